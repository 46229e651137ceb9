"""The education pages over plain HTTP against the real units, education and console
services: 廉洁提醒日打卡 (the member's check-in, coverage per unit) and 警示教育月月行 (the
grid over a month and a year boundary in Asia/Shanghai). The phone-sized check-in in a
real browser is in test_console_education_browser.py."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.console.education_pages import month_state
from services.console.tests.conftest import WITH_EDUCATION, console_node
from tests.harness import wait_for

TZ = ZoneInfo("Asia/Shanghai")
REMINDER = "廉洁从政，从拒绝第一杯酒开始。"
MEMBERS = {"m-zhang": ("张党员", "a"), "m-li": ("李党员", "a"), "m-wang": ("王党员", "b")}


def today():
    return datetime.now(TZ).date()


def seed(n) -> None:
    """A district with two party organisations, three members (each a console user whose
    user id is their person id) and today's reminder."""
    n.register_units(a="区财政局", b="区审计局")
    for person_id, (name, unit) in MEMBERS.items():
        n.register_person(person_id, name, unit, "科员")
        n.add_user(person_id, name, ["viewer"])
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("viewer", "李查看", ["viewer"])
    wait_for(lambda: daily(n)["members"] == 3, timeout=20)
    n.api("education", "set_daily_reminder", {"on": today().isoformat(), "text": REMINDER})


def daily(n, unit="root") -> dict:
    try:
        return n.query("education", "checkin_daily", {"unit_id": n.ids[unit]})
    except AssertionError:  # the unit has not reached education's directory yet
        return {"members": -1}


node = console_node(seed, WITH_EDUCATION, CONSOLE_BACKOFF_SECONDS="0")


def _checked(n, unit="root") -> int:
    return daily(n, unit)["checked_in"]


# -- 廉洁提醒日打卡 ---------------------------------------------------------------------------------
def test_a_member_checks_in_once_and_a_second_tap_counts_once(node, client_for):
    before = _checked(node)
    c = client_for(node, "m-zhang")
    page = c.get("/checkin")
    assert page.status_code == 200
    assert REMINDER in page.text and "我已阅知，打卡" in page.text
    first = c.post("/checkin")
    assert first.status_code == 303 and first.headers["Location"] == "/checkin"
    shown = c.get("/checkin").text
    assert "打卡成功，已连续打卡 1 天" in shown and "今日已打卡" in shown
    assert re.search(r'data-testid="current">1<', shown)
    second = c.post("/checkin")
    assert second.status_code == 303
    shown = c.get("/checkin").text
    assert "今天已经打过卡了，不重复计数" in shown
    assert re.search(r'data-testid="total">1<', shown)
    assert _checked(node) == before + 1
    assert _checked(node, "a") == 1


def test_a_check_in_without_the_csrf_code_is_refused_and_writes_nothing(node, client_for):
    before = _checked(node)
    c = client_for(node, "m-li")
    refused = c.post("/checkin", csrf=False)
    assert refused.status_code == 403 and "请求缺少有效的安全校验码" in refused.text
    # the positive signal: the same member's proper check-in arrives, and counts one
    assert c.post("/checkin").status_code == 303
    assert _checked(node) == before + 1


def test_a_user_who_is_not_a_member_is_told_in_chinese_and_nothing_is_written(node, client_for):
    before = _checked(node)
    c = client_for(node, "viewer")
    answer = c.post("/checkin")
    assert answer.status_code == 409
    assert "未登记为本节点的党员" in answer.text
    assert "Traceback" not in answer.text and "viewer" not in answer.text.split("</header>")[1]
    assert _checked(node) == before


def test_coverage_is_per_unit_and_names_no_person(node, client_for):
    admin = client_for(node, "admin")
    page = admin.get("/checkin/coverage")
    assert page.status_code == 200
    for unit in ("区财政局", "区审计局"):
        assert unit in page.text
    for person_id, (name, _) in MEMBERS.items():
        assert name not in page.text and person_id not in page.text
    assert "不列个人打卡排名" in page.text
    assert re.search(r"<td>区审计局</td><td>1</td><td>\d+</td>", page.text)
    month = admin.get("/checkin/coverage?period=%s" % today().strftime("%Y-%m"))
    assert 'data-testid="monthly-coverage"' in month.text
    # a unit-admin sees their own organisation only; a member has no coverage page
    scoped = client_for(node, "ua-a").get("/checkin/coverage")
    assert scoped.status_code == 200 and "区财政局" in scoped.text and "区审计局" not in scoped.text
    assert client_for(node, "m-wang").get("/checkin/coverage").status_code == 403
    bad = admin.get("/checkin/coverage?on=2026-13-40")
    assert bad.status_code == 400 and "日期格式应为 年-月-日" in bad.text


def _reminder_on(n, day):
    try:
        return n.api("education", "todays_reminder", {"on": day}, kind="query")["text"]
    except AssertionError:
        return None


def test_the_node_admin_sets_a_days_reminder_and_bad_input_writes_nothing(node, client_for):
    day = (today() + timedelta(days=3)).isoformat()
    admin = client_for(node, "admin")
    empty = admin.post("/checkin/coverage", {"on": day, "text": ""})
    assert empty.status_code == 400 and "输入有误" in empty.text
    past = admin.post("/checkin/coverage", {"on": "2020-01-01", "text": "过去的提醒"})
    assert past.status_code in (400, 409) and "Traceback" not in past.text
    refused = client_for(node, "ua-a").post("/checkin/coverage", {"on": day, "text": "单位管理员的提醒"})
    assert refused.status_code == 403
    assert _reminder_on(node, day) is None and _reminder_on(node, "2020-01-01") is None
    done = admin.post("/checkin/coverage", {"on": day, "text": "节前廉洁提醒：不收不送。"})
    assert done.status_code == 303
    assert _reminder_on(node, day) == "节前廉洁提醒：不收不送。"


# -- 警示教育月月行 ----------------------------------------------------------------------------------
def test_month_state_never_calls_a_month_in_progress_missed():
    assert month_state("2026-11", "2026-12", False) == "missed"
    assert month_state("2026-12", "2026-12", False) == "in_progress"
    assert month_state("2026-12", "2026-12", True) == "held"
    assert month_state("2027-01", "2026-12", None) == "future"
    assert month_state("2025-12", "2026-01", None) == "missed"  # across the year


def _cells(text: str) -> dict:
    return {(u, int(m)): s for u, m, s in re.findall(r'title="(\S+) (\d+)月：(\S+)"', text)}


def _missed(text: str) -> list[str]:
    block = re.search(r'data-testid="missed">(.*?)</ul>', text, re.S)
    return re.findall(r"<li>(\S+) <small", block.group(1)) if block else []


def _warning(n, unit, at):
    n.api("education", "record_session", {
        "kind": "warning_education", "title": "警示教育：以案促改", "organiser_unit_id": n.ids[unit],
        "scheduled_at": at, "attendance": {"headcount": 12}})


def test_the_grid_over_a_month_and_a_year_boundary_in_shanghai(node, client_for):
    # 23:30 on 31 December in Shanghai is still December; 00:10 on 1 January (16:10 UTC
    # the day before) is January. The same on the last night of October.
    _warning(node, "a", "2025-12-31T23:30:00+08:00")
    _warning(node, "b", "2025-12-31T16:10:00+00:00")
    _warning(node, "a", "2026-10-31T23:50:00+08:00")
    _warning(node, "b", "2026-10-31T16:05:00+00:00")
    admin = client_for(node, "admin")
    dec = admin.get("/warning-education?year=2025&month=12")
    assert dec.status_code == 200
    cells = _cells(dec.text)
    assert cells[("区财政局", 12)] == "已开展" and cells[("区审计局", 12)] == "未开展"
    assert _missed(dec.text) == ["区审计局"]
    assert 'class="state missed' in dec.text  # shown red
    jan = admin.get("/warning-education?year=2026&month=1").text
    assert _cells(jan)[("区审计局", 1)] == "已开展" and _cells(jan)[("区财政局", 1)] == "未开展"
    assert _missed(jan) == ["区财政局"]
    oct_ = _cells(admin.get("/warning-education?year=2026&month=10").text)
    nov = admin.get("/warning-education?year=2026&month=11").text
    assert oct_[("区财政局", 10)] == "已开展" and oct_[("区审计局", 10)] == "未开展"
    assert _cells(nov)[("区审计局", 11)] == "已开展" and _missed(nov) == ["区财政局"]
    # this month is in progress for both, never missed; next year's months have not come
    now = today()
    current = admin.get("/warning-education?year=%d&month=%d" % (now.year, now.month)).text
    assert _cells(current)[("区财政局", now.month)] == "进行中"
    assert "本月尚在进行中，以下党组织暂未开展" in current
    later = _cells(admin.get("/warning-education?year=%d" % (now.year + 1)).text)
    assert set(later.values()) == {"未到"}
    bad = admin.get("/warning-education?year=abc")
    assert bad.status_code == 400 and "年份应为四位数字" in bad.text


# -- 学习教育日历 ----------------------------------------------------------------------------------
def _sessions(n) -> list[dict]:
    period = today().strftime("%Y-%m")
    return n.api("education", "list_sessions", {"unit_id": n.ids["root"], "period": period},
                 kind="query")["organised"]


def _session_link(text: str, title: str) -> str:
    return re.search(r'href="(/calendar/sessions/[^"]+)"[^>]*>[^<]*%s' % re.escape(title), text).group(1)


def test_the_calendar_plans_holds_and_cancels_and_a_micro_lesson_needs_discussion_and_comment(
        node, client_for):
    admin = client_for(node, "admin")
    day = today().isoformat()
    lesson = {"kind": "micro_party_lesson", "title": "廉政微党课：守住小节", "organiser_unit_id":
              node.ids["a"], "day": day, "time": "00:00", "speaker_post": ""}
    before = len(_sessions(node))
    no_speaker = admin.post("/calendar", lesson)
    assert no_speaker.status_code == 400 and "廉政微党课须填写主讲人岗位" in no_speaker.text
    bad_day = admin.post("/calendar", dict(lesson, day="明天"))
    assert bad_day.status_code == 400 and "请填写日期（年-月-日）" in bad_day.text
    assert client_for(node, "viewer").post("/calendar", dict(lesson, speaker_post="书记")).status_code == 403
    assert len(_sessions(node)) == before
    planned = admin.post("/calendar", dict(lesson, speaker_post="党组织书记"))
    assert planned.status_code == 303
    cal = admin.get(planned.headers["Location"]).text
    assert "廉政微党课：廉政微党课：守住小节（已计划）" in cal
    link = _session_link(cal, "廉政微党课：守住小节")
    # 一人讲 without 议 and 评 is not a held 微党课: refused, still planned
    refused = admin.post(link, {"action": "hold", "headcount": "25"})
    assert refused.status_code == 400
    assert "大家议：廉政微党课须填写讨论情况" in refused.text and "领导评：廉政微党课须填写领导点评" in refused.text
    assert "required for" not in refused.text
    half = admin.post(link, {"action": "hold", "headcount": "25", "discussion": "结合岗位谈体会"})
    assert half.status_code == 400 and "领导评" in half.text
    sid = link.rsplit("/", 1)[1]
    assert node.api("education", "get_session", {"session_id": sid}, kind="query")["status"] == "planned"
    held = admin.post(link, {"action": "hold", "headcount": "25", "discussion": "结合岗位谈体会",
                             "leader_comment": "要求从小节做起"})
    assert held.status_code == 303
    shown = admin.get(link).text
    assert 'data-testid="status">已开展<' in shown and "要求从小节做起" in shown
    # plan another kind, then cancel it (a reason is required)
    study = dict(lesson, kind="theme_joint_study", title="主题联学：新修订条例")
    cal = admin.get(admin.post("/calendar", study).headers["Location"]).text
    link2 = _session_link(cal, "主题联学：新修订条例")
    assert admin.post(link2, {"action": "cancel", "reason": ""}).status_code == 400
    assert admin.post(link2, {"action": "cancel", "reason": "与上级会议冲突"}).status_code == 303
    assert "主题联学：主题联学：新修订条例（已取消）" in admin.get("/calendar").text
