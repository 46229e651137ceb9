"""The 五联五互 pages over plain HTTP, a city and a district running at once (two_nodes):
every 联's records show on the other node with their origin named in Chinese, what
each node adds reaches the owner, the owner's actions are offered on its node only,
and a refused request writes nothing. The browser tests are in
test_console_exchange_browser.py."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.harness import wait_for
from tests.harness.pair import uniq

TZ = ZoneInfo("Asia/Shanghai")


def today() -> date:
    return datetime.now(TZ).date()


def _link(html: str, title: str) -> str:
    m = re.search(r'<a href="(/exchange/[^"]+)">%s</a>' % re.escape(title), html)
    assert m, "no link to %s" % title
    return m.group(1)


def _rid(path: str) -> str:
    return "/".join(path.split("/")[-2:])


def _arrived(node, client, segment, title):
    return wait_for(lambda: title in client.get("/exchange/%s" % segment).text, 40,
                    what="%s at %s" % (title, node.node_id))


@pytest.fixture
def clients(two_nodes, client_for):
    return {"city": client_for(two_nodes.city, "admin"),
            "district": client_for(two_nodes.district, "admin")}


# -- 经验联享 ---------------------------------------------------------------------------------------
def test_an_experience_shared_up_reaches_the_city_named_by_its_origin(two_nodes, clients):
    d, city = two_nodes.district, two_nodes.city
    title = uniq("窗口廉洁服务承诺")
    page = clients["district"].get("/exchange/experiences")
    assert page.status_code == 200
    # the sentence for each level says exactly who will see it
    assert "只有本单位（甲区）能看到" in page.text
    assert "本单位（甲区）和市级（市本级）能看到，其他区看不到。" in page.text
    assert "市级和各区都能看到：甲区、市本级。" in page.text
    answer = clients["district"].post("/exchange/experiences", {
        "unit_id": d.units["甲区政务服务窗口"], "title": title, "business_type": "政务服务",
        "topics": "窗口、承诺", "summary": "一次性告知、限时办结。", "body": "做法正文。",
        "sharing": "city", "publish": "1"})
    assert answer.status_code == 303, answer.text
    _arrived(city, clients["city"], "experiences", title)
    listed = clients["city"].get("/exchange/experiences").text
    row = listed.split(title)[1].split("</tr>")[0]
    assert "来自：甲区 · 甲区政务服务窗口" in row and "district-a" not in row
    assert "上报市级" in row
    detail = clients["city"].get(_link(listed, title)).text
    assert "上报市级：甲区、市本级能看到。" in detail
    # the city learns from it and comments; both reach the district
    path = _link(listed, title)
    assert clients["city"].post(path, {"action": "learned", "unit_id": city.units["市财政局"],
                                       "note": "推广到市级窗口"}).status_code == 303
    assert clients["city"].post(path, {"action": "comment", "unit_id": city.units["市直机关工委"],
                                       "text": "做法很实用"}).status_code == 303
    # the city may not edit the district's experience: no edit form there
    assert "修改经验" not in clients["city"].get(path).text
    wait_for(lambda: "推广到市级窗口" in clients["district"].get(path).text and
             "做法很实用" in clients["district"].get(path).text, 40, what="city's marks at district")
    text = clients["district"].get(path).text
    assert "来自：市本级 · 市财政局" in text and "修改经验" in text


def test_a_draft_stays_on_its_node_until_published(two_nodes, clients):
    d = two_nodes.district
    title = uniq("草稿经验")
    answer = clients["district"].post("/exchange/experiences", {
        "unit_id": d.units["甲区财政局"], "title": title, "business_type": "财务",
        "summary": "摘要", "body": "正文", "publish": "0"})
    assert answer.status_code == 303
    listed = clients["district"].get("/exchange/experiences").text
    assert title in listed.split('data-testid="drafts"')[1]
    detail = clients["district"].get(_link(listed, title)).text
    assert "尚未共享：只有本单位（甲区）能看到。" in detail


def test_a_draft_case_is_revised_before_it_is_shared(two_nodes, clients):
    d = two_nodes.district
    title = uniq("草稿案例")
    made = clients["district"].post("/exchange/cases", {
        "unit_id": d.units["甲区财政局"], "title": title, "category": "违规发放补贴",
        "summary": "摘要", "facts": "案情", "analysis": "初稿剖析", "lessons": "严格审批",
        "publish": "0"})
    assert made.status_code == 303, made.text
    path = made.headers["Location"]
    page = clients["district"].get(path).text
    assert "尚未共享" in page and "修订案例（第 2 版）" in page
    # a revision that changes nothing and merges nothing is refused and writes nothing
    before = d.head("exchange")
    same = clients["district"].post(path, {"action": "revise", "analysis": "初稿剖析",
                                           "lessons": "严格审批", "note": "没改"})
    assert same.status_code == 400 and "修订既没有改动内容，也没有合并任何补充" in same.text
    assert d.head("exchange") == before
    assert clients["district"].post(path, {"action": "revise", "analysis": "补充剖析",
                                           "lessons": "严格审批\n定期自查",
                                           "note": "完善剖析"}).status_code == 303
    page = clients["district"].get(path).text
    assert 'data-testid="revision">第 2 版' in page and "补充剖析" in page
    assert "完善剖析" in page.split('data-testid="revisions"')[1].split("</table>")[0]
    assert "尚未共享" in page  # revising does not share it


def test_named_sharing_without_a_chosen_unit_is_refused_in_chinese_and_writes_nothing(
        two_nodes, clients):
    d = two_nodes.district
    before = d.head("exchange")
    title = uniq("指定单位未选")
    answer = clients["district"].post("/exchange/experiences", {
        "unit_id": d.units["甲区财政局"], "title": title, "business_type": "财务",
        "summary": "摘要", "body": "正文", "sharing": "named", "publish": "1"})
    assert answer.status_code == 400
    assert "指定单位: 至少一个本节点以外的节点" in answer.text
    assert "Traceback" not in answer.text
    assert d.head("exchange") == before
    assert title not in clients["district"].get("/exchange/experiences").text.split("<h1>")[1].split("撰写经验")[0]


def test_a_viewer_gets_no_buttons_and_a_forged_post_is_refused(two_nodes, client_for):
    d = two_nodes.district
    viewer = client_for(d, "viewer")
    for seg in ("experiences", "cases", "activities", "exemplars", "problems"):
        page = viewer.get("/exchange/%s" % seg)
        assert page.status_code == 200 and 'data-testid="new"' not in page.text
    before = d.head("exchange")
    refused = viewer.post("/exchange/experiences", {
        "unit_id": d.units["甲区财政局"], "title": "查看员伪造", "business_type": "财务",
        "summary": "摘要", "body": "正文", "publish": "0"})
    assert refused.status_code == 403
    assert d.head("exchange") == before


# -- 案例联编 ----------------------------------------------------------------------------------------
def test_the_district_contributes_to_a_city_case_and_the_city_merges_it(two_nodes, clients):
    city, d = two_nodes.city, two_nodes.district
    title = uniq("违规发放津补贴典型案例")
    made = clients["city"].post("/exchange/cases", {
        "unit_id": city.units["市财政局"], "title": title, "category": "违规发放补贴",
        "summary": "摘要", "facts": "案情", "analysis": "剖析", "lessons": "严格审批\n定期自查",
        "sharing": "all", "publish": "1"})
    assert made.status_code == 303, made.text
    path = made.headers["Location"]
    _arrived(d, clients["district"], "cases", title)
    page = clients["district"].get(path).text
    assert "来自：市本级 · 市财政局" in page and "提交补充内容" in page and "修订案例" not in page
    assert "已发布" in page and "published" not in page
    assert "第 1 版" in page.split('data-testid="revisions"')[1].split("</table>")[0]
    assert clients["district"].post(path, {
        "action": "contribute", "unit_id": d.units["甲区财政局"],
        "contribution_type": "local_lesson", "text": "本区同类问题的教训"}).status_code == 303
    wait_for(lambda: "本区同类问题的教训" in clients["city"].get(path).text, 40,
             what="the contribution at the city")
    page = clients["city"].get(path).text
    assert "修订案例（第 2 版）" in page
    merge = re.search(r'name="merge" value="([^"]+)"', page).group(1)
    assert clients["city"].post(path, {"action": "revise", "merge": merge,
                                       "analysis": "剖析（吸收甲区教训）",
                                       "note": "合并甲区补充"}).status_code == 303
    page = clients["city"].get(path).text
    assert 'data-testid="revision">第 2 版' in page
    revisions = page.split('data-testid="revisions"')[1].split("</table>")[0]
    assert "合并甲区补充" in revisions and "甲区 · 甲区财政局（本地教训）" in revisions
    assert "已合并" in page.split('data-testid="contributions"')[1].split("</table>")[0]
    wait_for(lambda: "第 2 版" in clients["district"].get(path).text, 40, what="revision 2 at district")


# -- 活动联办 ----------------------------------------------------------------------------------------
def _when(days: int, hour: int) -> str:
    return "%s %02d:00" % ((today() + timedelta(days=days)).isoformat(), hour)


def test_a_joint_activity_sign_up_attendance_and_outcome(two_nodes, clients):
    city, d = two_nodes.city, two_nodes.district
    title = uniq("清廉机关联学联建专题党日")
    made = clients["city"].post("/exchange/activities", {
        "unit_id": city.units["市直机关工委"], "title": title, "theme": "专题党日",
        "description": "共学党纪法规、共看警示短片", "location": "市民中心",
        "starts_at": _when(10, 9), "ends_at": _when(10, 11), "invited_nodes": "district-a",
        "sharing": "named", "publish": "1"})
    assert made.status_code == 303, made.text
    path = made.headers["Location"]
    assert 'data-testid="invited">甲区<' in clients["city"].get(path).text
    _arrived(d, clients["district"], "activities", title)
    bad = clients["district"].post(path, {"action": "sign_up", "unit_id": d.units["甲区财政局"],
                                          "headcount": "零"})
    assert bad.status_code == 400 and "人数: 请填写正整数" in bad.text
    assert clients["district"].post(path, {"action": "sign_up", "unit_id": d.units["甲区财政局"],
                                           "headcount": "12"}).status_code == 303
    assert clients["district"].post(path, {
        "action": "attendance", "attendees_%s" % d.units["甲区财政局"]: "11",
        "note": "1 人出差"}).status_code == 303
    wait_for(lambda: "甲区财政局 12 人" in clients["city"].get(path).text and
             "11 人（1 人出差）" in clients["city"].get(path).text, 40, what="sign-up at the city")
    assert clients["city"].post(path, {"action": "outcome", "summary": "联学效果良好",
                                       "results": "形成联学清单\n互评互比"}).status_code == 303
    wait_for(lambda: "联学效果良好" in clients["district"].get(path).text, 40, what="outcome")
    page = clients["district"].get(path).text
    assert "已完成" in page and 'data-testid="sign-up"' not in page


# -- 典型联树 ----------------------------------------------------------------------------------------
def test_an_exemplar_with_indicators_is_endorsed_by_the_other_node(two_nodes, clients):
    city, d = two_nodes.city, two_nodes.district
    title = uniq("清廉窗口示范点")
    made = clients["district"].post("/exchange/exemplars", {
        "unit_id": d.units["甲区政务服务窗口"], "title": title, "category": "window",
        "section": "综合窗口", "description": "好差评全覆盖", "period": today().strftime("%Y-%m"),
        "indicator_name": ["好评率", "办结率", ""], "indicator_value": ["99.5", "100", ""],
        "sharing": "all", "publish": "1"})
    assert made.status_code == 303, made.text
    path = made.headers["Location"]
    _arrived(city, clients["city"], "exemplars", title)
    page = clients["city"].get(path).text
    assert "好评率" in page and "99.5" in page and "推荐这个典型" in page and "更新指标" not in page
    assert clients["city"].post(path, {"action": "endorse", "unit_id": city.units["市直机关工委"],
                                       "comment": "值得全市推广"}).status_code == 303
    wait_for(lambda: "值得全市推广" in clients["district"].get(path).text, 40, what="endorsement")
    page = clients["district"].get(path).text
    assert "来自：市本级 · 市直机关工委" in page.split('data-testid="endorsements"')[1]
    assert "推荐这个典型" not in page  # no endorsing one's own


# -- 难题联解 ----------------------------------------------------------------------------------------
def test_a_problem_gets_a_proposal_from_the_city_which_the_district_accepts_and_resolves(
        two_nodes, clients):
    city, d = two_nodes.city, two_nodes.district
    title = uniq("基层站所廉政风险点难识别")
    made = clients["district"].post("/exchange/problems", {
        "unit_id": d.units["甲区区直机关工委"], "title": title, "context": "站所分散",
        "deadline": (today() + timedelta(days=3)).isoformat(), "sharing": "all", "publish": "1"})
    assert made.status_code == 303, made.text
    path = made.headers["Location"]
    listed = clients["district"].get("/exchange/problems").text
    row = listed.split(title)[1].split("</tr>")[0]
    assert 'data-state="due_soon"' in row and "即将到期" in row  # yellow
    _arrived(city, clients["city"], "problems", title)
    assert clients["city"].post(path, {"action": "propose", "unit_id": city.units["市财政局"],
                                       "summary": "建立风险点清单", "detail": "按岗位梳理"}
                                ).status_code == 303
    wait_for(lambda: "建立风险点清单" in clients["district"].get(path).text, 40, what="proposal")
    page = clients["district"].get(path).text
    proposal = re.search(r'name="proposal_id" value="([^"]+)"', page).group(1)
    assert clients["district"].post(path, {"action": "accept", "proposal_id": proposal,
                                           "note": "采纳市级方案"}).status_code == 303
    assert clients["district"].post(path, {"action": "resolve", "summary": "清单已建立",
                                           "results": "识别风险点 36 个", "measures": "季度更新",
                                           "resolved_on": today().isoformat()}).status_code == 303
    wait_for(lambda: "清单已建立" in clients["city"].get(path).text, 40, what="resolution")
    page = clients["city"].get(path).text
    assert 'data-state="done"' in page and "已采纳" in page


def test_problem_deadlines_in_three_colours(two_nodes, clients):
    from services.exchange.domain import deadline_state
    t = today().isoformat()
    assert deadline_state("open", (today() - timedelta(days=1)).isoformat(), t, 7) == "overdue"
    assert deadline_state("open", (today() + timedelta(days=7)).isoformat(), t, 7) == "due_soon"
    assert deadline_state("open", (today() + timedelta(days=8)).isoformat(), t, 7) == "on_track"
    assert deadline_state("solution_accepted", "2020-01-01", t, 7) == "overdue"
    assert deadline_state("resolved", "2020-01-01", t, 7) == "done"
    d = two_nodes.district
    title = uniq("远期难题")
    made = clients["district"].post("/exchange/problems", {
        "unit_id": d.units["甲区财政局"], "title": title, "context": "情况",
        "deadline": (today() + timedelta(days=30)).isoformat(), "sharing": "city", "publish": "1"})
    assert made.status_code == 303
    row = clients["district"].get("/exchange/problems").text.split(title)[1].split("</tr>")[0]
    assert 'class="green"' in clients["district"].get("/exchange/problems").text.split(title)[0][-300:]
    assert "按期推进" in row
    # a problem posted ten days ago with a deadline three days ago (the exchange runtime's
    # controllable clock set back while it is posted): red, 已逾期, on both nodes
    rt = d.exchange.runtime
    real = rt.clock
    rt.clock = lambda: real() - timedelta(days=10)
    try:
        late = d.exchange_execute("post_problem", {
            "unit_id": d.units["甲区财政局"], "title": uniq("逾期难题"), "context": "情况",
            "deadline": (today() - timedelta(days=3)).isoformat(),
            "share": {"sharing": "city", "recipients": []}})
    finally:
        rt.clock = real
    path = "/exchange/problems/" + late["problem_id"]
    page = clients["district"].get(path).text
    assert 'data-state="overdue"' in page and "已逾期" in page and 'class="due red"' in page
    wait_for(lambda: 'data-state="overdue"' in clients["city"].get(path).text, 40,
             what="the overdue problem at the city")
    past = clients["district"].post("/exchange/problems", {
        "unit_id": d.units["甲区财政局"], "title": uniq("过期难题"), "context": "情况",
        "deadline": "2020-01-01", "sharing": "city", "publish": "1"})
    assert past.status_code == 400 and "期限" in past.text
