"""清廉机关实践 pages against the real units, supervision, education and console services
(issue 10 #21, #22): 我为清廉机关建设献一策 over HTTP (refusals write nothing) and in Chromium (a
unit-admin records a member's suggestion picked by name, accepts and answers it, the adoption
figures follow); 集中廉政承诺 over HTTP (one per person and year, witnesses, refusals write
nothing) and in Chromium (a 纪检委员's pledge counts in the unit's coverage); screenshots for
the user guide. 典型案例通报 and 群众监督: test_console_practices_public.py (this node fixture)."""
from __future__ import annotations

from services.console.tests.browser import HOME, no_codes, open_menu, sign_in
from services.console.tests.conftest import WITH_EDUCATION, console_node, shoot


PUBLIC_LIMIT = 3  # reports the public page takes from one client address per hour


def _seed(n):
    n.register_units(a="区财政局", b="区审计局")
    for row in (("p-qian", "钱书记", "a", "党组书记"), ("p-sun", "孙委员", "a", "科员"),
                ("p-li", "李科员", "a", "科员"), ("p-wu", "吴书记", "b", "党组书记")):
        n.register_person(*row)
    for pid, role in (("p-qian", "party_secretary"), ("p-sun", "discipline_member"),
                      ("p-wu", "party_secretary")):
        n.api("units", "assign_role", {"person_id": pid, "role": role})
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("ua-b", "钱审计", ["unit-admin"], n.ids["b"])
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("inspector", "孙纪检", ["inspector"])
    n.api("units", "draft_micro_power", {"unit_id": n.ids["a"], "post": "窗口受理岗", "content": {
        "duties": ["受理资金拨付申请"], "power_boundary": "仅限法定条件审查",
        "steps": [{"name": "受理", "responsible_post": "窗口受理岗"}]}})
    n.api("units", "publish_micro_power", {"unit_id": n.ids["a"], "post": "窗口受理岗",
                                           "published_on": "2026-11-01"})


node = console_node(_seed, WITH_EDUCATION, CONSOLE_BACKOFF_SECONDS="0",
                    CONSOLE_PUBLIC_REPORTS_PER_HOUR=str(PUBLIC_LIMIT))


def _no_codes(text: str) -> None:
    no_codes(text, r"p-qian|p-sun|p-li|p-wu|submitted|accepted|in_progress|answered|"
                   r"adopted|partly_adopted|not_adopted|party_secretary|discipline_member|enterprise|resident|"
                   r"studied|overdue|pending|complaint|public_report|received|converted|None")


# -- 献一策 over HTTP ---------------------------------------------------------------------------
def test_suggestions_over_http_and_refusals_write_nothing(node, client_for):
    ua = client_for(node, "ua-a")
    r = ua.post("/suggestions", {"unit_id": node.ids["a"], "proposer_id": "p-li",
                                 "title": "公务接待清单公开", "content": "建议每月公开公务接待清单。"})
    assert r.status_code == 303, r.text
    sid = r.headers["Location"].rsplit("/", 1)[1]
    detail = ua.get("/suggestions/%s" % sid).text
    assert "李科员" in detail and "待受理" in detail and "受理" in detail
    _no_codes(detail)

    before = node.head("education")
    r = ua.post("/suggestions", {"unit_id": node.ids["a"], "proposer_id": "p-li", "title": "",
                                 "content": "没有题目"})
    assert r.status_code == 400 and "field-error" in r.text
    r = ua.post("/suggestions", {"unit_id": node.ids["a"], "proposer_id": "p-wu", "title": "跨单位",
                                 "content": "别的单位的人"})
    assert r.status_code == 400 and "不在该单位" in r.text
    r = ua.post("/suggestions/%s" % sid, {"action": "answer", "reply": "好", "outcome": "adopted"})
    assert r.status_code == 400 and "须先受理" in r.text
    r = ua.post("/suggestions/%s" % sid, {"action": "accept", "handler": ""})
    assert r.status_code == 400
    assert client_for(node, "ua-b").post("/suggestions/%s" % sid,
                                         {"action": "accept", "handler": "办公室"}).status_code == 403
    viewer = client_for(node, "viewer")
    assert viewer.post("/suggestions", {"unit_id": node.ids["a"], "proposer_id": "p-li",
                                        "title": "看客", "content": "不能登记"}).status_code == 403
    assert "登记建议" not in viewer.get("/suggestions").text  # no form for a viewer
    assert node.head("education") == before

    assert ua.post("/suggestions/%s" % sid, {"action": "accept", "handler": "办公室"}).status_code == 303
    assert ua.post("/suggestions/%s" % sid, {"action": "answer", "reply": "采纳，下月起公开",
                                             "outcome": "adopted"}).status_code == 303
    text = viewer.get("/suggestions").text
    assert "公务接待清单公开" in text and "采纳" in text
    _no_codes(text)


# -- 献一策 in Chromium -------------------------------------------------------------------------
def test_a_unit_admin_records_handles_and_answers_a_suggestion(node, page):
    sign_in(page, node, "ua-a", until=HOME)
    open_menu(page, "献一策", "我为清廉机关建设献一策")
    page.select_option("select[name=unit_id]", label="区财政局")
    page.wait_for_selector("#proposer option:has-text('孙委员')", state="attached")
    page.select_option("#proposer", label="孙委员（科员）")
    page.fill("input[name=title]", "廉政风险点上墙")
    page.fill("textarea[name=content]", "建议把各岗位廉政风险点和防控措施上墙公示。")
    page.click("button:has-text('登记建议')")
    page.wait_for_selector("p.flash:has-text('已登记建议：廉政风险点上墙')")
    assert page.inner_text("[data-testid=status]") == "待受理"
    page.fill("input[name=handler]", "机关党委办公室")
    page.click("button:has-text('受理')")
    page.wait_for_selector("p.flash:has-text('已受理')")
    page.fill("textarea[name=note]", "已在三个科室试点上墙")
    page.click("button:has-text('记录')")
    page.wait_for_selector("p.flash:has-text('已记录办理情况')")
    assert page.inner_text("[data-testid=status]") == "办理中"
    page.fill("textarea[name=reply]", "部分采纳：先在窗口科室上墙")
    page.select_option("select[name=outcome]", label="部分采纳")
    page.click("button:has-text('答复')")
    page.wait_for_selector("p.flash:has-text('已答复')")
    assert page.inner_text("[data-testid=outcome]") == "部分采纳"
    _no_codes(page.inner_text("main"))
    shoot(page, "80-suggestion")
    page.click("a:has-text('返回献一策')")
    row = page.locator("[data-testid=summary] tr", has_text="区财政局").inner_text()
    want = next(u for u in node.query("education", "suggestion_summary", {"unit_id": node.ids["root"]})["units"]
                if u["unit_id"] == node.ids["a"])
    assert want["adopted"] >= 1  # partly adopted counts as adopted
    assert row.split("\t")[1:5] == [str(want[k]) for k in ("submitted", "accepted", "answered", "adopted")]
    assert "孙委员" in page.inner_text("[data-testid=suggestions]")
    _no_codes(page.inner_text("main"))
    shoot(page, "81-suggestions")


# -- 集中廉政承诺 over HTTP -----------------------------------------------------------------------
def _pledge_form(signer, **kw):
    data = {"unit_id": "", "signer": signer, "pledged_on": "2026-11-20", "occasion": "第一期清廉品牌活动",
            "text": "严守政治纪律，廉洁用权，接受监督。",
            "w_kind": ["enterprise", "resident", "enterprise"], "w_name": ["周企业", "吴居民", ""],
            "w_org": ["某建筑公司", "东街社区", ""]}
    data.update(kw)
    return data


def test_pledges_over_http_and_refusals_write_nothing(node, client_for):
    ua = client_for(node, "ua-a")
    r = ua.post("/pledges", _pledge_form("p-qian|party_secretary"))
    assert r.status_code == 303, r.text
    text = ua.get("/pledges?year=2026").text
    assert "钱书记" in text and "周企业（企业代表，某建筑公司）" in text and "吴居民（居民代表，东街社区）" in text
    _no_codes(text)
    detail = ua.get("/pledges/2026/p-qian").text
    assert "严守政治纪律" in detail and "第一期清廉品牌活动" in detail
    _no_codes(detail)
    assert "孙委员" in ua.get("/pledges/signers?unit_id=%s" % node.ids["a"]).text
    assert "李科员" not in ua.get("/pledges/signers?unit_id=%s" % node.ids["a"]).text

    before = node.head("units")
    r = ua.post("/pledges", _pledge_form("p-qian|party_secretary", pledged_on="2026-11-25"))
    assert r.status_code == 400 and "本年度已承诺" in r.text
    r = ua.post("/pledges", _pledge_form("p-li|party_secretary"))
    assert r.status_code == 400 and "该人员不是党组织书记" in r.text
    r = ua.post("/pledges", _pledge_form("p-sun|discipline_member", w_kind=["enterprise"], w_name=["周企业"],
                                         w_org=[""], pledged_on="2025-06-01"))
    assert r.status_code == 400 and "须有居民代表见证" in r.text
    r = ua.post("/pledges", _pledge_form(""))
    assert r.status_code == 400 and "请选择承诺人" in r.text
    assert ua.post("/pledges", _pledge_form("p-wu|party_secretary")).status_code == 403  # another unit
    viewer = client_for(node, "viewer")
    assert viewer.post("/pledges", _pledge_form("p-sun|discipline_member", pledged_on="2025-06-01")).status_code == 403
    assert "登记承诺" not in viewer.get("/pledges").text
    assert node.head("units") == before


# -- 集中廉政承诺 in Chromium ---------------------------------------------------------------------
def test_a_discipline_members_pledge_counts_in_the_units_coverage(node, page):
    sign_in(page, node, "ua-a", until=HOME)
    open_menu(page, "廉政承诺", "集中廉政承诺")
    page.select_option("select[name=unit_id]", label="区财政局")
    page.wait_for_selector("#signer option:has-text('孙委员（纪检委员）')", state="attached")
    page.select_option("#signer", label="孙委员（纪检委员）")
    page.fill("input[name=pledged_on]", "2026-11-20")
    page.fill("input[name=occasion]", "第一期清廉品牌活动")
    page.fill("textarea[name=text]", "履行监督责任，带头廉洁自律。")
    page.fill("input[aria-label=见证人姓名1]", "郑企业")
    page.fill("input[aria-label=见证人单位1]", "某物流公司")
    page.fill("input[aria-label=见证人姓名2]", "王居民")
    page.fill("input[aria-label=见证人单位2]", "西街社区")
    page.click("button:has-text('登记承诺')")
    page.wait_for_selector("p.flash:has-text('已登记廉政承诺（2026 年度）')")
    row = page.locator("[data-testid=coverage] tr", has_text="区财政局")
    want = next(u for u in node.query("units", "pledge_coverage", {"unit_id": node.ids["root"], "year": 2026})["units"]
                if u["unit_id"] == node.ids["a"])
    assert "孙委员" in [p["name"] for p in want["pledged"]]
    assert row.inner_text().split("\t")[1:4] == [str(want["holders"]), str(len(want["pledged"])),
                                                 "%.1f%%" % (100 * want["coverage"])]
    assert "郑企业（企业代表，某物流公司）" in page.inner_text("[data-testid=pledges]")
    assert "区审计局" not in page.inner_text("[data-testid=coverage]")  # a unit-admin sees their units
    _no_codes(page.inner_text("main"))
    shoot(page, "82-pledges")
