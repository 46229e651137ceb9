"""清廉机关实践 (issue 10 #21, #27) through the education application on SQLite and
PostgreSQL: 我为清廉机关建设献一策 (a member's suggestion, 受理 / 办理 / 答复, adoption
per unit) and 典型案例通报 (a typical case - typed or one of the cases on offer - to every unit
of a subtree, each unit's study receipt, 逾期未学 past the deadline), with every refused
request writing nothing."""
from __future__ import annotations

import pytest

from services.education.domain import Suggestion, adoption_rate
from tests.harness.education import ADMIN, Node, unit_admin, utc, viewer
from shared.errors import BadInput, Conflict, Forbidden, NotFound, QinglianError, RuleViolation


@pytest.fixture
def node(db_url):
    n = Node(db_url, utc(2026, 12, 2, 2, 0))
    n.tree()
    n.person("p-fin-1", "fin")
    n.person("p-fin-2", "fin")
    n.person("p-mkt-1", "mkt")
    yield n
    n.close()


def refused(n, exc, name, data, actor=ADMIN):
    """The request is refused with ``exc`` and appends nothing."""
    before = n.head()
    with pytest.raises(exc) as info:
        n.run(name, data, actor)
    assert n.head() == before
    return info.value


# -- 献一策: domain ---------------------------------------------------------------------------
def test_a_suggestion_is_answered_only_after_it_was_accepted():
    from datetime import date
    sg = Suggestion.submit("s1", "fin", "p1", "公开采购流程", "建议每季度公开采购清单。", date(2026, 12, 2))
    with pytest.raises(RuleViolation) as e:
        sg.answer("已采纳", "adopted", date(2026, 12, 3), "ua")
    assert "待受理" in str(e.value) and "suggestion_id" in e.value.fields
    sg.accept("办公室", date(2026, 12, 3), "ua")
    with pytest.raises(RuleViolation):
        sg.accept("办公室", date(2026, 12, 3), "ua")
    sg.progress("已起草公开制度", date(2026, 12, 4), "ua")
    sg.answer("已纳入制度", "partly_adopted", date(2026, 12, 5), "ua")
    assert (sg.status, sg.outcome) == ("answered", "partly_adopted")
    with pytest.raises(RuleViolation) as e:
        sg.progress("再记一条", date(2026, 12, 6), "ua")
    assert "已答复" in str(e.value)
    assert adoption_rate(0, 0) is None and adoption_rate(1, 4) == 0.25


# -- 献一策: the application --------------------------------------------------------------------
def test_suggestions_are_handled_and_adoption_is_counted_per_unit(node):
    ua = unit_admin("fin")
    ids = []
    for person, title in (("p-fin-1", "采购清单季度公开"), ("p-fin-2", "报销审批线上留痕"),
                          ("p-fin-1", "廉政提醒进科室")):
        ids.append(node.run("submit_suggestion", {"unit_id": "fin", "proposer_id": person,
                                                  "title": title, "content": "具体建议内容。"},
                            ua)["suggestion_id"])
    node.run("submit_suggestion", {"unit_id": "mkt", "proposer_id": "p-mkt-1", "title": "执法记录仪全程使用",
                                   "content": "建议执法全程记录。"})
    assert node.run("accept_suggestion", {"suggestion_id": ids[0], "handler": "办公室"}, ua)["status"] == "accepted"
    node.run("progress_suggestion", {"suggestion_id": ids[0], "note": "已起草公开办法"}, ua)
    assert node.run("answer_suggestion", {"suggestion_id": ids[0], "reply": "已采纳，下季度起公开",
                                          "outcome": "adopted"}, ua)["outcome"] == "adopted"
    node.run("accept_suggestion", {"suggestion_id": ids[1], "handler": "财务科"}, ua)
    node.run("answer_suggestion", {"suggestion_id": ids[1], "reply": "系统暂不具备条件",
                                   "outcome": "not_adopted"}, ua)

    one = node.ask("get_suggestion", {"suggestion_id": ids[0]}, viewer("v"))
    assert (one["status"], one["handler"], one["progress"], one["notes"], one["unit_name"]) == \
        ("answered", "办公室", "已起草公开办法", 1, "财政局")
    listed = node.ask("list_suggestions", {"unit_id": "fin"}, ua)["suggestions"]
    assert {s["suggestion_id"] for s in listed} == set(ids)
    waiting = node.ask("list_suggestions", {"unit_id": "dist", "status": "submitted"})["suggestions"]
    assert {s["title"] for s in waiting} == {"廉政提醒进科室", "执法记录仪全程使用"}

    summary = node.ask("suggestion_summary", {"unit_id": "dist", "year": 2026})
    fin = next(u for u in summary["units"] if u["unit_id"] == "fin")
    assert (fin["submitted"], fin["accepted"], fin["answered"], fin["adopted"], fin["adoption_rate"]) == \
        (3, 2, 2, 1, 0.5)
    mkt = next(u for u in summary["units"] if u["unit_id"] == "mkt")
    assert (mkt["submitted"], mkt["accepted"], mkt["adoption_rate"]) == (1, 0, None)
    assert summary["total"]["submitted"] == 4 and summary["total"]["adopted"] == 1
    assert node.ask("suggestion_summary", {"unit_id": "dist", "year": 2025})["units"] == []
    # this year by default (the runtime clock's, in the users' zone)
    assert node.ask("suggestion_summary", {"unit_id": "dist"})["year"] == 2026


def test_refused_suggestion_requests_write_nothing(node):
    ua = unit_admin("fin")
    sid = node.run("submit_suggestion", {"unit_id": "fin", "proposer_id": "p-fin-1", "title": "建议",
                                         "content": "内容"}, ua)["suggestion_id"]
    e = refused(node, BadInput, "submit_suggestion", {"unit_id": "fin", "proposer_id": "p-fin-1",
                                                      "title": "", "content": "内容"}, ua)
    assert "title" in e.fields
    e = refused(node, BadInput, "submit_suggestion", {"unit_id": "fin", "proposer_id": "p-mkt-1",
                                                      "title": "建议", "content": "内容"}, ua)
    assert e.fields == {"proposer_id": ["不在该单位"]}
    e = refused(node, NotFound, "submit_suggestion", {"unit_id": "fin", "proposer_id": "p-nobody",
                                                      "title": "建议", "content": "内容"}, ua)
    assert "proposer_id" in e.fields
    refused(node, Forbidden, "submit_suggestion", {"unit_id": "mkt", "proposer_id": "p-mkt-1",
                                                   "title": "建议", "content": "内容"}, ua)
    refused(node, Forbidden, "accept_suggestion", {"suggestion_id": sid, "handler": "办公室"},
            unit_admin("mkt"))
    refused(node, Forbidden, "accept_suggestion", {"suggestion_id": sid, "handler": "办公室"}, viewer("v"))
    e = refused(node, RuleViolation, "answer_suggestion", {"suggestion_id": sid, "reply": "好",
                                                           "outcome": "adopted"}, ua)
    assert "须先受理" in str(e)
    e = refused(node, BadInput, "answer_suggestion", {"suggestion_id": sid, "reply": "好",
                                                      "outcome": "maybe"}, ua)
    assert "采纳" in e.fields["outcome"][0]
    e = refused(node, NotFound, "accept_suggestion", {"suggestion_id": "nope", "handler": "办公室"}, ua)
    assert "suggestion_id" in e.fields
    with pytest.raises(QinglianError):
        node.ask("list_suggestions", {"unit_id": "mkt"}, ua)


# -- 典型案例通报 -----------------------------------------------------------------------------------
def _case_on_offer(node, case_id="city/case-7", title="某局长违规收受礼金案", summary="节日期间收受礼金，受到处分。"):
    from services.education.application import record_case_event
    from tests.harness.education import SYSTEM, source_event
    ev = source_event("Case.Published", 1, {"case_id": case_id, "title": title, "summary": summary,
                                            "category": "gifts", "tags": [], "sharing": "shared"})
    with node.rt.unit_of_work(SYSTEM) as uow:
        assert record_case_event(uow, ev)


def test_a_typical_case_reaches_every_unit_of_a_subtree_and_each_records_its_study(node):
    from tests.harness.education import inspector
    _case_on_offer(node)
    out = node.run("issue_case_bulletin", {
        "issuer_unit_id": "dist", "scope_unit_id": "dist", "case_ref": "city/case-7",
        "requirements": "各单位组织学习，对照查摆，举一反三。", "due_on": "2026-12-10"}, inspector())
    assert out["recipients"] == 5  # fin, fin-s1, mkt, mkt-g1, edu; not the issuer itself
    bid = out["bulletin_id"]
    one = node.ask("case_bulletin_receipts", {"bulletin_id": bid, "unit_id": "dist"})
    assert one["bulletin"]["title"] == "某局长违规收受礼金案"  # taken from the case, not retyped
    assert one["bulletin"]["summary"] == "节日期间收受礼金，受到处分。"
    assert (one["recipients"], one["studied"], one["rate"]) == (5, [], 0.0)
    assert {u["state"] for u in one["not_studied"]} == {"pending"}

    ua = unit_admin("fin")
    node.run("record_case_study", {"bulletin_id": bid, "unit_id": "fin", "studied_on": "2026-12-02",
                                   "headcount": 23, "note": "对照查摆资金审批环节"}, ua)
    node.run("record_case_study", {"bulletin_id": bid, "unit_id": "fin-s1", "studied_on": "2026-12-02",
                                   "headcount": 6, "note": "科室学习"}, ua)
    fin = node.ask("case_bulletin_receipts", {"bulletin_id": bid, "unit_id": "fin"}, ua)
    assert (fin["recipients"], len(fin["studied"]), fin["rate"]) == (2, 2, 1.0)
    assert fin["studied"][0]["headcount"] == 23 and fin["studied"][0]["by_user"] == "ua-fin"
    listed = node.ask("list_case_bulletins", {"unit_id": "dist"})["bulletins"]
    assert [(b["recipients_here"], b["studied"], b["overdue"]) for b in listed] == [(5, 2, 0)]
    # past the deadline, who has not studied it is 逾期未学
    node.clock.set(2026, 12, 11, 2, 0)
    late = node.ask("case_bulletin_receipts", {"bulletin_id": bid, "unit_id": "dist"})
    assert {u["unit_id"]: u["state"] for u in late["not_studied"]} == \
        {"mkt": "overdue", "mkt-g1": "overdue", "edu": "overdue"}
    assert node.ask("list_case_bulletins", {"unit_id": "dist"})["bulletins"][0]["overdue"] == 3
    assert node.ask("list_case_bulletins", {"unit_id": "mkt"})["bulletins"][0]["recipients_here"] == 2
    # a typed case for one unit's subtree only
    typed = node.run("issue_case_bulletin", {"issuer_unit_id": "mkt", "scope_unit_id": "mkt",
                                             "title": "执法人员吃拿卡要案", "summary": "案情摘要",
                                             "requirements": "组织学习"}, unit_admin("mkt"))
    assert typed["recipients"] == 1
    assert len(node.ask("list_case_bulletins", {"unit_id": "fin"})["bulletins"]) == 1


def test_refused_bulletin_requests_write_nothing(node):
    from tests.harness.education import inspector
    bid = node.run("issue_case_bulletin", {"issuer_unit_id": "dist", "scope_unit_id": "fin",
                                           "title": "案例", "summary": "案情", "requirements": "学习",
                                           "due_on": "2026-12-10"}, inspector())["bulletin_id"]
    ua = unit_admin("fin")
    e = refused(node, BadInput, "issue_case_bulletin", {"issuer_unit_id": "dist", "scope_unit_id": "dist",
                                                        "requirements": "学习"}, inspector())
    assert set(e.fields) == {"title", "summary"}
    e = refused(node, NotFound, "issue_case_bulletin", {"issuer_unit_id": "dist", "scope_unit_id": "dist",
                                                        "case_ref": "city/none", "requirements": "学习"})
    assert e.fields == {"case_ref": ["没有这个案例"]}
    e = refused(node, BadInput, "issue_case_bulletin", {"issuer_unit_id": "fin", "scope_unit_id": "mkt",
                                                        "title": "案例", "summary": "案情", "requirements": "学习"})
    assert e.fields == {"scope_unit_id": ["不在通报单位之下"]}
    e = refused(node, RuleViolation, "issue_case_bulletin", {
        "issuer_unit_id": "dist", "scope_unit_id": "dist", "title": "案例", "summary": "案情",
        "requirements": "学习", "due_on": "2026-11-30"})
    assert e.fields == {"due_on": ["学习期限不能早于通报日期"]}
    e = refused(node, RuleViolation, "issue_case_bulletin", {
        "issuer_unit_id": "edu", "scope_unit_id": "edu", "title": "案例", "summary": "案情", "requirements": "学习"})
    assert "scope_unit_id" in e.fields  # nobody below 教育局 to receive it
    refused(node, Forbidden, "issue_case_bulletin", {"issuer_unit_id": "dist", "scope_unit_id": "dist",
                                                     "title": "案例", "summary": "案情", "requirements": "学习"}, ua)
    refused(node, Forbidden, "issue_case_bulletin", {"issuer_unit_id": "dist", "scope_unit_id": "dist",
                                                     "title": "案例", "summary": "案情", "requirements": "学习"},
            viewer("v"))
    study = {"bulletin_id": bid, "unit_id": "fin", "studied_on": "2026-12-02", "headcount": 5, "note": "学习"}
    e = refused(node, RuleViolation, "record_case_study", dict(study, studied_on="2026-12-03"), ua)
    assert e.fields == {"studied_on": ["不能晚于今天"]}
    e = refused(node, RuleViolation, "record_case_study", dict(study, headcount=0), ua)
    assert e.fields == {"headcount": ["至少 1 人"]}
    e = refused(node, RuleViolation, "record_case_study", dict(study, unit_id="mkt"))
    assert e.fields == {"unit_id": ["不是这份通报的接收单位"]}
    refused(node, Forbidden, "record_case_study", dict(study, unit_id="mkt"), ua)
    e = refused(node, BadInput, "record_case_study", dict(study, note=""), ua)
    assert "note" in e.fields
    node.run("record_case_study", study, ua)
    e = refused(node, Conflict, "record_case_study", study, ua)
    assert e.fields == {"unit_id": ["已登记学习"]}
    e = refused(node, NotFound, "record_case_study", dict(study, bulletin_id="nope"))
    assert e.fields == {"bulletin_id": ["没有这份通报"]}


def test_a_bulletin_is_in_each_recipients_inbox_until_it_has_studied_it(node):
    bid = node.run("issue_case_bulletin", {"issuer_unit_id": "dist", "scope_unit_id": "mkt", "title": "案例",
                                           "summary": "案情", "requirements": "学习"})["bulletin_id"]
    items = node.ask("unit_inbox", {"unit_id": "mkt"})["items"]
    mine = [i for i in items if i["ref"] == "case:%s" % bid]
    assert [(i["unit_id"], i["kind"], i["status"]) for i in mine] == [("mkt", "case_bulletin", "open")]
    node.run("record_case_study", {"bulletin_id": bid, "unit_id": "mkt", "studied_on": "2026-12-02",
                                   "headcount": 9, "note": "学习"}, unit_admin("mkt"))
    items = node.ask("unit_inbox", {"unit_id": "mkt", "include_closed": True})["items"]
    assert [i["status"] for i in items if i["ref"] == "case:%s" % bid and i["unit_id"] == "mkt"] == ["closed"]
