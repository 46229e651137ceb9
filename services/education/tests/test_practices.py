"""清廉机关实践 (issue 10 #21, #22, #27) through the education application on SQLite and
PostgreSQL: 我为清廉机关建设献一策 (a member's suggestion, 受理 / 办理 / 答复, adoption
per unit), with every refused request writing nothing."""
from __future__ import annotations

import pytest

from services.education.domain import Suggestion, adoption_rate
from services.education.tests.support import ADMIN, Node, unit_admin, utc, viewer
from shared.errors import BadInput, Forbidden, NotFound, QinglianError, RuleViolation


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
