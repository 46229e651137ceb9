"""The education outreach pages and 节点状态 over plain HTTP, against the real units,
supervision, education, exchange and console services: 廉政宣传周更新 (library and weekly
rotation), 廉洁通知 (calendar, receipts per unit), 廉政谈话 / 年轻干部 (due and overdue,
recorded), 精准推送 (offer and coverage gaps per risk point) and the node-admin's status
page (peers' key fingerprints, links, rejected messages by reason). Browser flows and
screenshots: test_console_outreach_browser.py."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from kombu import Connection

from services.console.tests.browser import no_codes
from services.console.tests.conftest import WITH_EXCHANGE, console_node
from tests.harness import wait_for

TZ = ZoneInfo("Asia/Shanghai")


def today():
    return datetime.now(TZ).date()


def _q(n, name, data):
    return n.query("education", name, data)


def seed(n) -> None:
    """A district, two party organisations, a cadre promoted 40 days ago (his talk is
    overdue), one promoted today (due), a young cadre whose education is overdue, a
    library and a notice sent today."""
    n.register_units(a="区财政局", b="区审计局")
    for pid, name, unit, young in (("p-chen", "陈提拔", "a", False), ("p-liu", "刘新任", "b", False),
                                   ("p-zhou", "周青年", "a", True)):
        n.register_person(pid, name, unit, "科员", young_cadre=young)
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("inspector", "孙纪检", ["inspector"])
    n.add_user("viewer", "李查看", ["viewer"])
    wait_for(lambda: _members(n) == 3, timeout=30)
    n.api("units", "promote_person", {"person_id": "p-chen", "new_post": "副科长", "unit_id": n.ids["a"],
                                      "effective_on": (today() - timedelta(days=40)).isoformat()})
    n.api("units", "promote_person", {"person_id": "p-liu", "new_post": "科长", "unit_id": n.ids["b"],
                                      "effective_on": today().isoformat()})
    wait_for(lambda: len(_q(n, "list_talks", {"unit_id": n.ids["root"]})["talks"]) == 2, timeout=30)
    wait_for(lambda: _q(n, "young_cadre_programme", {"unit_id": n.ids["root"]})["young_cadres"],
             timeout=30)
    n.api("education", "record_young_cadre_education", {
        "person_id": "p-zhou", "on": (today() - timedelta(days=100)).isoformat(), "topic": "纪律教育"})
    n.api("education", "detect_overdue", {})
    for kind, title, text, ref, tags in (
            ("slogan", "廉洁短句：清白做人", "清清白白做人，干干净净做事。", None, {}),
            ("slogan", "资金拨付警句", "每一笔拨付都要经得起审计。", None,
             {"risk_points": ["资金拨付"], "business_types": ["财政"]}),
            ("image", "廉洁屏保：莲", None, "图库/廉洁/莲.png", {}),
            ("short_text", "审批廉洁短文", "窗口审批要阳光。", None, {"posts": ["窗口审批员"]})):
        n.api("education", "add_content", {"kind": kind, "title": title, "text": text, "ref": ref,
                                           "tags": tags})
    # supervision's 廉政风险点台账: what tailoring fits material to
    for unit, description, post in (("a", "资金拨付", "出纳"), ("a", "政府采购", "采购专员"),
                                    ("b", "资金拨付", None)):
        n.api("supervision", "identify_risk_point", {"unit_id": n.ids[unit], "description": description,
                                                     "category": "post_duty", "post": post})
    wait_for(lambda: len(_q(n, "risk_point_register", {"unit_id": n.ids["root"]})["risk_points"]) == 3,
             timeout=30)
    n.api("education", "schedule_notice", {
        "title": "关于换届期间严守纪律的通知", "body": "换届期间严守组织人事纪律，收到后请回执。",
        "send_on": today().isoformat(), "occasion": "换届期间"})
    n.api("education", "dispatch_due_notices", {})


def _members(n) -> int:
    try:
        return _q(n, "checkin_daily", {"unit_id": n.ids["root"]})["members"]
    except AssertionError:  # not in education's unit directory yet
        return -1


node = console_node(seed, WITH_EXCHANGE, CONSOLE_BACKOFF_SECONDS="0")


def _library(n) -> list[str]:
    return [i["title"] for i in _q(n, "list_content", {"include_retired": True})["items"]]


def _no_codes(html: str) -> None:
    no_codes(html, r"p-chen|p-zhou|slogan|short_text|scheduled|overdue|None")


# -- 廉政宣传周更新 ----------------------------------------------------------------------------------
def test_the_library_is_added_to_by_the_node_admin_and_a_refused_item_writes_nothing(node, client_for):
    admin = client_for(node, "admin")
    page = admin.get("/publicity")
    assert page.status_code == 200
    assert "资金拨付警句" in page.text and "图片引用：图库/廉洁/莲.png" in page.text
    assert "资金拨付" in page.text and "窗口审批员" in page.text  # tags shown
    before = _library(node)
    # an image needs its reference; a unit-admin and a viewer may not add
    no_ref = admin.post("/publicity", {"action": "add", "kind": "image", "title": "无引用的图片"})
    assert no_ref.status_code in (400, 409) and "图片" in no_ref.text and "Traceback" not in no_ref.text
    assert client_for(node, "ua-a").post("/publicity", {"action": "add", "kind": "slogan",
                                                        "title": "单位加的", "text": "x"}).status_code == 403
    assert "加入内容库" not in client_for(node, "viewer").get("/publicity").text
    assert _library(node) == before
    # the risk-point tag is picked from the register, never typed
    assert re.search(r'<input type="checkbox" name="risk_points" value="政府采购">', page.text)
    done = admin.post("/publicity", {"action": "add", "kind": "short_text", "title": "节前廉洁短文",
                                     "text": "节前节后，廉洁过节。", "posts": "出纳、会计",
                                     "risk_points": ["资金拨付", "政府采购"]})
    assert done.status_code == 303
    item = next(i for i in _q(node, "list_content", {})["items"] if i["title"] == "节前廉洁短文")
    assert item["tags"]["risk_points"] == ["政府采购", "资金拨付"]
    assert item["tags"]["posts"] == ["会计", "出纳"] or item["tags"]["posts"] == sorted(["出纳", "会计"])
    _no_codes(admin.get("/publicity").text.split("</nav>")[1])


def test_a_units_week_is_chosen_by_hand_and_the_history_says_what_was_shown(node, client_for):
    ua = client_for(node, "ua-a")
    unit_page = "/publicity/units/%s" % node.ids["a"]
    assert client_for(node, "viewer").post(unit_page, {"action": "auto"}).status_code == 403
    empty = ua.post(unit_page, {"action": "manual"})
    assert empty.status_code == 400 and "请至少选择一条内容" in empty.text
    assert _q(node, "publicity_history", {"unit_id": node.ids["a"]})["weeks"] == []
    items = {i["title"]: i["item_id"] for i in _q(node, "list_content", {})["items"]}
    chosen = ua.post(unit_page, {"action": "manual", "item_ids": [items["资金拨付警句"], items["廉洁屏保：莲"]]})
    assert chosen.status_code == 303
    shown = ua.get(unit_page).text
    assert re.search(r"（本周）.*廉政短句：资金拨付警句；廉政图片：廉洁屏保：莲.*手动选择", shown, re.S)
    # the week per unit: 区财政局 shows its choice, 区审计局 nothing yet
    week = client_for(node, "admin").get("/publicity").text
    rows = re.findall(r"<tr[^>]*><td>(区\S+局)</td>\s*<td>(.*?)</td>", week, re.S)
    assert dict(rows)["区财政局"].startswith("廉政短句：资金拨付警句")
    assert dict(rows)["区审计局"] == "本周尚未更新"
    # another unit's page is out of the unit-admin's scope
    assert ua.post("/publicity/units/%s" % node.ids["b"], {"action": "auto"}).status_code in (403, 404)
    assert _q(node, "publicity_history", {"unit_id": node.ids["b"]})["weeks"] == []


# -- 廉洁通知 ------------------------------------------------------------------------------------
def _notice_id(n, title):
    return next(x["notice_id"] for x in _q(n, "list_notices", {})["notices"] if x["title"] == title)


def test_notices_on_the_calendar_and_receipts_per_unit(node, client_for):
    admin = client_for(node, "admin")
    cal = admin.get("/notices")
    assert cal.status_code == 200
    assert "已发送：关于换届期间严守纪律的通知" in cal.text
    assert "已回执 0 / 2（0.0%）" in cal.text
    nid = _notice_id(node, "关于换届期间严守纪律的通知")
    detail = admin.get("/notices/%s" % nid).text
    pending = re.search(r'data-testid="not-acknowledged">(.*?)</section>', detail, re.S).group(1)
    assert "区财政局" in pending and "区审计局" in pending
    # the unit-admin of 区财政局 acknowledges for it, and only for it
    ua = client_for(node, "ua-a")
    page = ua.get("/notices/%s" % nid).text
    assert page.count("确认收到") == 1
    refused = ua.post("/notices/%s" % nid, {"action": "acknowledge", "unit_id": node.ids["b"]})
    assert refused.status_code in (403, 404)
    assert len(_q(node, "notice_receipts", {"notice_id": nid})["acknowledged"]) == 0
    assert ua.post("/notices/%s" % nid, {"action": "acknowledge", "unit_id": node.ids["a"]}).status_code == 303
    detail = admin.get("/notices/%s" % nid).text
    done = re.search(r'data-testid="acknowledged">(.*?)</section>', detail, re.S).group(1)
    pending = re.search(r'data-testid="not-acknowledged">(.*?)</section>', detail, re.S).group(1)
    assert "区财政局" in done and "区财政局" not in pending and "区审计局" in pending
    assert 'data-testid="acknowledged-count">1<' in detail
    # a viewer sees the receipts but has no button
    assert "确认收到" not in client_for(node, "viewer").get("/notices/%s" % nid).text
    _no_codes(detail.split("</nav>")[1])


def test_a_notice_is_scheduled_in_advance_and_a_past_date_writes_nothing(node, client_for):
    admin = client_for(node, "admin")
    before = len(_q(node, "list_notices", {})["notices"])
    past = admin.post("/notices", {"title": "过去的通知", "body": "正文",
                                   "send_on": (today() - timedelta(days=1)).isoformat()})
    assert past.status_code in (400, 409) and "发送日期必须是今天或以后" in past.text
    blank = admin.post("/notices", {"title": "", "body": "", "send_on": ""})
    assert blank.status_code == 400 and "必填" in blank.text
    assert client_for(node, "ua-a").post("/notices", {"title": "单位的", "body": "x",
                                                      "send_on": today().isoformat()}).status_code == 403
    assert len(_q(node, "list_notices", {})["notices"]) == before
    later = today() + timedelta(days=40)
    made = admin.post("/notices", {"title": "关于重大活动期间廉洁自律的通知", "body": "请严守纪律。",
                                   "send_on": (later - timedelta(days=3)).isoformat(),
                                   "occasion": "重大活动", "occasion_date": later.isoformat()})
    assert made.status_code == 303
    cal = admin.get("/notices?period=%s" % later.strftime("%Y-%m")).text
    assert "待发送：关于重大活动期间廉洁自律的通知" in cal and ">重大活动</a>" in cal
    nid = _notice_id(node, "关于重大活动期间廉洁自律的通知")
    assert admin.post("/notices/%s" % nid, {"action": "cancel", "reason": "活动取消"}).status_code == 303
    assert "已取消：关于重大活动期间廉洁自律的通知" in admin.get(
        "/notices?period=%s" % later.strftime("%Y-%m")).text


def test_a_holiday_notice_is_scheduled_from_the_calendar_and_shown_before_the_holiday(node, client_for):
    """元旦 from the service's holiday calendar (3 days ahead): scheduled on 20 December by
    education's routine (its clock set to that morning), on the calendar on its send day
    and the holiday itself marked - nobody types it."""
    from services.education.domain import NOTICE_STATUSES
    rt = node.runtime("education")
    real = rt.clock
    rt.clock = lambda: datetime(2026, 12, 20, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
    try:
        node.api("education", "schedule_calendar_notices", {})
    finally:
        rt.clock = real
    title = "关于元旦期间严守纪律、廉洁过节的通知"
    n = next(x for x in _q(node, "list_notices", {})["notices"] if x["title"] == title)
    assert (n["send_on"], n["occasion_date"]) == ("2026-12-29", "2027-01-01")
    admin = client_for(node, "admin")
    cell = re.search(r'data-day="2026-12-29">(.*?)</td>', admin.get("/notices?period=2026-12").text, re.S)
    assert "%s：%s" % (NOTICE_STATUSES.label(n["status"]), title) in cell.group(1)
    holiday = re.search(r'data-day="2027-01-01">(.*?)</td>', admin.get("/notices?period=2027-01").text, re.S)
    assert ">元旦</a>" in holiday.group(1)


# -- 廉政谈话 / 年轻干部 ------------------------------------------------------------------------------
def _talks(n):
    return {t["person_id"]: t for t in _q(n, "list_talks", {"unit_id": n.ids["root"]})["talks"]}


def test_talks_due_and_overdue_by_name_and_a_talk_recorded(node, client_for):
    inspector = client_for(node, "inspector")
    page = inspector.get("/talks")
    assert page.status_code == 200
    row = re.search(r'data-talk="陈提拔">(.*?)</tr>', page.text, re.S).group(1)
    assert "已逾期（逾期 10 天）" in row and "副科长" in row and "区财政局" in row
    row = re.search(r'data-talk="刘新任">(.*?)</tr>', page.text, re.S).group(1)
    assert "待谈话（还有 30 天）" in row
    assert 'data-testid="overdue-count">1<' in page.text
    assert client_for(node, "viewer").get("/talks").status_code == 403
    talk_id = _talks(node)["p-chen"]["talk_id"]
    future = inspector.post("/talks", {"action": "talk", "talk_id": talk_id, "conducted_by": "党组书记",
                                       "held_on": (today() + timedelta(days=1)).isoformat()})
    assert future.status_code in (400, 409) and "谈话须在进行后才能登记" in future.text
    no_post = inspector.post("/talks", {"action": "talk", "talk_id": talk_id, "conducted_by": "",
                                        "held_on": today().isoformat()})
    assert no_post.status_code == 400
    assert _talks(node)["p-chen"]["status"] == "scheduled"
    held = inspector.post("/talks", {"action": "talk", "talk_id": talk_id, "conducted_by": "党组书记",
                                     "held_on": today().isoformat(), "note": "提醒守住底线"})
    assert held.status_code == 303
    row = re.search(r'data-talk="陈提拔">(.*?)</tr>', inspector.get("/talks").text, re.S).group(1)
    assert "已谈话（晚 10 天）" in row and "党组书记" in row
    _no_codes(inspector.get("/talks").text.split("</nav>")[1])


def test_a_young_cadre_overdue_is_listed_and_the_unit_admin_records_education(node, client_for):
    ua = client_for(node, "ua-a")
    page = ua.get("/talks").text
    row = re.search(r'data-young="周青年">(.*?)</tr>', page, re.S).group(1)
    assert "已逾期 10 天" in row
    assert 'data-testid="young-overdue-count">1<' in page
    # an inspector reads it but records no young cadre's education
    assert "登记教育" not in client_for(node, "inspector").get("/talks").text
    assert client_for(node, "inspector").post("/talks", {"action": "young", "person_id": "p-zhou",
                                                         "on": today().isoformat(),
                                                         "topic": "x"}).status_code == 403
    assert ua.post("/talks", {"action": "young", "person_id": "p-zhou", "on": today().isoformat(),
                              "topic": ""}).status_code == 400
    assert _q(node, "young_cadre_programme", {"unit_id": node.ids["a"]})["young_cadres"][0]["overdue"]
    assert ua.post("/talks", {"action": "young", "person_id": "p-zhou", "on": today().isoformat(),
                              "topic": "年轻干部廉洁教育专题"}).status_code == 303
    row = re.search(r'data-young="周青年">(.*?)</tr>', ua.get("/talks").text, re.S).group(1)
    assert "按期（还有 90 天）" in row


# -- 精准推送 ------------------------------------------------------------------------------------
def test_a_units_offer_follows_its_profile_and_coverage_shows_the_gaps(node, client_for):
    ua = client_for(node, "ua-a")
    admin = client_for(node, "admin")
    refused = client_for(node, "viewer").post("/tailoring?unit_id=%s" % node.ids["a"],
                                              {"unit_id": node.ids["a"], "business_types": "财政"})
    assert refused.status_code == 403
    out_of_scope = ua.post("/tailoring", {"unit_id": node.ids["b"], "business_types": "审计"})
    assert out_of_scope.status_code in (403, 404)
    assert _q(node, "offer_for_unit", {"unit_id": node.ids["b"]})["profile"]["business_types"] == []
    saved = ua.post("/tailoring", {"unit_id": node.ids["a"], "business_types": "财政"})
    assert saved.status_code == 303
    page = ua.get("/tailoring?unit_id=%s" % node.ids["a"]).text
    register = re.search(r'data-testid="register">(.*?)</td>', page, re.S).group(1)
    assert "资金拨付（出纳）" in register and "政府采购（采购专员）" in register
    offer = re.search(r'data-testid="offer-content">(.*?)</table>', page, re.S).group(1)
    first = re.findall(r"<tr><td>[^<]+</td><td>([^<]+)</td>", offer)
    # the unit's risk points and business type fit best: first; general material after
    assert set(first[:2]) == {"节前廉洁短文", "资金拨付警句"} and "廉洁短句：清白做人" in first[2:]
    assert "风险点：资金拨付" in offer and "审批廉洁短文" not in offer  # another post's material
    coverage = admin.get("/tailoring").text
    rows = dict(re.findall(r"<td>(资金拨付|政府采购)</td>.*?data-testid=\"gaps\">(.*?)</td>", coverage, re.S))
    assert rows["资金拨付"] == "区审计局、区财政局" or rows["资金拨付"] == "区财政局、区审计局"
    assert rows["政府采购"] == "区财政局"
    # a session on 资金拨付 held by 区财政局 closes its gap for that risk point
    node.api("education", "record_session", {
        "kind": "warning_education", "title": "资金拨付警示教育", "organiser_unit_id": node.ids["a"],
        "scheduled_at": datetime.now(TZ).replace(microsecond=0).isoformat(),
        "attendance": {"headcount": 10}, "tags": {"risk_points": ["资金拨付"]}})
    coverage = admin.get("/tailoring").text
    rows = dict(re.findall(r"<td>(资金拨付|政府采购)</td>.*?data-testid=\"gaps\">(.*?)</td>", coverage, re.S))
    assert rows["资金拨付"] == "区审计局" and rows["政府采购"] == "区财政局"
    _no_codes(coverage.split("</nav>")[1])


# -- 节点状态 ------------------------------------------------------------------------------------
def test_the_rejection_reasons_all_have_labels():
    from services.exchange.domain import FEDERATION_LINK_STATES, REJECTION_REASON_LABELS
    from services.exchange.federation import REJECTION_REASONS
    assert set(REJECTION_REASON_LABELS) == set(REJECTION_REASONS)
    assert "running" in FEDERATION_LINK_STATES


def _failures(accounts: str) -> int:
    m = re.search(r"密码错误 (\d+) 次", accounts)
    return int(m.group(1)) if m else 0


def test_node_status_shows_peers_fingerprints_links_and_rejections_by_reason(node, client_for):
    from shared.federation.keys import node_registry
    from shared.federation.registry import key_fingerprint
    from services.exchange.federation import INBOX_QUEUE
    for who in ("ua-a", "inspector", "viewer"):
        assert client_for(node, who).get("/admin/status").status_code == 403
        assert "节点状态" not in client_for(node, who).get("/").text
    admin = client_for(node, "admin")
    me = node_registry(node.base).this_node()
    page = admin.get("/admin/status")
    assert page.status_code == 200
    assert key_fingerprint(me.public_key) in page.text and "（本节点）" in page.text
    assert "本节点没有联邦链路" in page.text
    assert re.search(r'data-testid="queues">消息队列 \d+ 个', page.text)
    assert "/admin/users" in page.text
    # users, tokens and sign-in records: the node's own directory, counted
    users = node.users.list_users()
    tokens = [t for u in users for t in node.users.list_tokens(u["user_id"])]
    accounts = re.search(r'data-testid="accounts">(.*?)</table>', page.text, re.S).group(1)
    assert "<td>%d 个（其中停用 0 个）</td>" % len(users) in accounts
    assert "<td>%d 个（有效 %d 个）</td>" % (len(tokens), len(tokens)) in accounts
    assert re.search(r"登录成功 \d+ 次", accounts)
    failures = _failures(accounts)
    assert client_for(node).sign_in("viewer", "not-the-password").status_code == 401
    again = re.search(r'data-testid="accounts">(.*?)</table>', admin.get("/admin/status").text, re.S)
    assert _failures(again.group(1)) == failures + 1
    # an unreadable message arrives in the inbox queue: refused, counted by its reason
    with Connection(node.base["AMQP_URI"]) as conn:
        conn.Producer().publish(b"not json at all", exchange="", routing_key=INBOX_QUEUE,
                                content_type="application/json", content_encoding="utf-8")
    wait_for(lambda: "格式错误" in admin.get("/admin/status").text, timeout=20)
    rows = re.search(r'data-testid="rejections">(.*?)</table>', admin.get("/admin/status").text, re.S)
    assert re.search(r"<td>格式错误</td><td>\d+</td><td>1</td>", rows.group(1))


# -- 学习教育日历: roster or headcount (last: it credits the young cadre's education) ----------------
def test_a_session_is_held_with_a_roster_picked_by_name_and_credits_the_young_cadre(node, client_for):
    start = datetime.now(TZ).replace(hour=0, minute=1, second=0, microsecond=0)
    planned = node.api("education", "plan_session", {
        "kind": "theme_joint_study", "title": "主题联学：名单登记", "organiser_unit_id": node.ids["a"],
        "scheduled_at": start.isoformat(),
        "materials": [{"title": "学习材料", "ref": "区纪发〔2026〕1号"}]})
    link = "/calendar/sessions/%s" % planned["session_id"]
    admin = client_for(node, "admin")
    page = admin.get(link).text
    roster = re.search(r'data-testid="roster">(.*?)</fieldset>', page, re.S).group(1)
    assert "陈提拔" in roster and "周青年" in roster and "刘新任" not in roster  # the unit's people
    assert "学习材料（区纪发〔2026〕1号）" in page
    nothing = admin.post(link, {"action": "hold", "headcount": ""})
    assert nothing.status_code == 400 and "或勾选参加人员" in nothing.text
    assert _q(node, "get_session", {"session_id": planned["session_id"]})["status"] == "planned"
    held = admin.post(link, {"action": "hold", "headcount": "", "roster": ["p-chen", "p-zhou"]})
    assert held.status_code == 303
    shown = admin.get(link).text
    assert 'data-testid="status">已开展<' in shown and re.search(r"<th>参加人数</th><td>2</td>", shown)
    young = _q(node, "young_cadre_programme", {"unit_id": node.ids["a"]})["young_cadres"][0]
    assert young["last_on"] == today().isoformat()


def test_a_session_planned_on_the_calendar_for_a_risk_point_closes_its_gap(node, client_for):
    admin = client_for(node, "admin")
    cal = admin.get("/calendar").text
    tags = re.search(r'data-testid="session-tags">(.*?)</fieldset>', cal, re.S).group(1)
    assert 'value="政府采购"' in tags and 'value="资金拨付"' in tags  # picked, not typed
    planned = admin.post("/calendar", {"kind": "theme_joint_study", "title": "政府采购专题联学",
                                       "organiser_unit_id": node.ids["a"], "day": today().isoformat(),
                                       "time": "00:00", "risk_points": ["政府采购"], "posts": "采购专员"})
    assert planned.status_code == 303
    session = next(s for s in _q(node, "list_sessions", {"unit_id": node.ids["a"]})["organised"]
                   if s["title"] == "政府采购专题联学")
    assert session["tags"]["risk_points"] == ["政府采购"] and session["tags"]["posts"] == ["采购专员"]
    assert admin.post("/calendar/sessions/%s" % session["session_id"],
                      {"action": "hold", "headcount": "15"}).status_code == 303
    coverage = admin.get("/tailoring").text
    rows = dict(re.findall(r"<td>(资金拨付|政府采购)</td>.*?data-testid=\"gaps\">(.*?)</td>", coverage, re.S))
    assert rows["政府采购"] == "无"


def test_a_broker_api_that_does_not_answer_is_said_in_chinese():
    """The status page's broker part against a management API nobody listens on (a real
    closed port): the page says so instead of failing."""
    from nameko.testing.utils import find_free_port

    from services.console.status_pages import _broker
    from tests.fixtures import AMQP_SERVER

    class Dep:
        container = type("C", (), {"config": {
            "AMQP_URI": AMQP_SERVER, "RABBITMQ_API_URL": "http://127.0.0.1:%d" % find_free_port()}})

    links, queues, error = _broker(type("W", (), {"dep": Dep})())
    assert (links, queues) == ([], []) and error == "无法连接消息服务器管理接口，链路和队列状态暂不可用。"
