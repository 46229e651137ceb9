"""单位与责任's lists and people, 政治生态研判's editors and 检查督导's batches and checklist
versions, over plain HTTP against the real units, supervision, education and console
services: what is written, what is refused (and then nothing is written), what each role
sees, that nothing typed is an id and nothing shown is a code. The same flows clicked in
Chromium, with the screenshots, are in test_console_lists_browser.py."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from services.console.tests.conftest import WITH_EDUCATION, console_node
from tests.harness import wait_for

XSS = "<script>alert(1)</script>"
ITEMS_V1 = [("落实全面从严治党主体责任", "党组书记", "20"), ("每季度开展廉政风险排查", "纪检委员", "10"),
            ("按时报送廉政教育台账", "办公室", "5")]


def _seed(n):
    n.register_units(a="区财政局", b="区审计局", xss=(XSS, "section", "section", "a"))
    n.people = {"zhang": n.register_person(None, "张科长", "a", "预算科科长"),
                "li": n.register_person(None, "李审计", "b", "审计员"),
                "xss": n.register_person(None, XSS, "xss", XSS)}
    n.add_user("viewer", "李查看", ["viewer"])
    n.add_user("ua-a", "赵财政", ["unit-admin"], n.ids["a"])
    n.add_user("insp", "钱检查", ["inspector"])


node = console_node(_seed, WITH_EDUCATION, CONSOLE_BACKOFF_SECONDS="0")


# -- helpers ------------------------------------------------------------------------------------
class _Forms(HTMLParser):
    """Every form's action and its fields as a browser would send them unchanged."""

    def __init__(self):
        super().__init__()
        self.forms, self._form, self._select = [], None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"id": a.get("id"), "action": a.get("action"), "method": a.get("method"),
                          "fields": []}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self._form["fields"].append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self._select = [a.get("name"), None, None]  # name, first, selected
        elif tag == "option" and self._select is not None:
            if self._select[1] is None:
                self._select[1] = a.get("value")
            if "selected" in a:
                self._select[2] = a.get("value")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None and self._form is not None:
            name, first, chosen = self._select
            self._form["fields"].append((name, chosen if chosen is not None else first))
            self._select = None


def form_of(html: str, form_id: str) -> list[tuple[str, str]]:
    parser = _Forms()
    parser.feed(html)
    return next(f["fields"] for f in parser.forms if f["id"] == form_id)


def post_forms(html: str) -> list[str]:
    parser = _Forms()
    parser.feed(html)
    return [f["action"] for f in parser.forms if (f["method"] or "").lower() == "post"]


def visible(html: str) -> str:
    """What a person reads: no tags, attributes, scripts or styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def no_codes(html: str, *codes: str) -> None:
    text = visible(html)
    for code in codes:
        assert code not in text, code


def _set(fields, name, value):
    return [(k, value if k == name else v) for k, v in fields]


def _draft(node, client, unit="a", items=ITEMS_V1, title="2026年度党风廉政建设责任清单"):
    data = [("kind", "responsibility_list"), ("title", title)]
    for text, post, score in items:
        data += [("item_text", text), ("item_post", post), ("item_score", score)]
    data.append(("_csrf", client.csrf("/account")))
    r = client.s.post(node.url + "/units/%s/documents/new" % node.ids[unit], data=data,
                      allow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["Location"].rsplit("/", 1)[1]


def _revise(client, node, doc_id, items, note, title="2026年度党风廉政建设责任清单"):
    data = [("title", title), ("note", note), ("_csrf", client.csrf("/account"))]
    for text, post, score in items:
        data += [("item_text", text), ("item_post", post), ("item_score", score)]
    return client.s.post(node.url + "/documents/%s/revise" % doc_id, data=data,
                         allow_redirects=False)


# -- 任务清单 / 责任清单 / 考评细则: versions and their side-by-side difference ---------------------------
def test_a_list_is_drafted_revised_and_two_chosen_versions_compared(node, client_for):
    ua = client_for(node, "ua-a")
    doc_id = _draft(node, ua)
    items_v2 = [ITEMS_V1[0], ("每季度开展廉政风险排查", "纪检委员", "15"), ("年底述责述廉", "党组书记", "10")]
    r = _revise(ua, node, doc_id, items_v2, "增加述责述廉，提高排查分值")
    assert r.status_code == 303
    page = ua.get("/documents/%s" % doc_id).text
    assert "第 2 版" in page and "增加述责述廉，提高排查分值" in page and "初始版本" in page
    assert 'id="compare-form"' in page
    diff = ua.get("/documents/%s/compare?from=1&to=2" % doc_id)
    assert diff.status_code == 200
    text = visible(diff.text)
    assert "第 1 版与第 2 版对照" in text
    assert re.search(r"新增\s*1\s*条", text) and re.search(r"删除\s*1\s*条", text) \
        and re.search(r"修改\s*1\s*条", text)
    assert "修改：分值" in text
    assert diff.text.count('class="diff-added"') == 1 and diff.text.count('class="diff-removed"') == 1
    assert "按时报送廉政教育台账" in text and "年底述责述廉" in text
    no_codes(diff.text, "responsibility_list", "owner_post", "added", "removed", "changed")
    # the other way round: what was added is now removed
    back = visible(ua.get("/documents/%s/compare?from=2&to=1" % doc_id).text)
    assert "年底述责述廉" in back and re.search(r"删除\s*1\s*条", back)
    # a version that does not exist: a Chinese 404
    missing = ua.get("/documents/%s/compare?from=1&to=9" % doc_id)
    assert missing.status_code == 404 and "没有" in visible(missing.text)


def test_a_revision_without_change_or_without_items_is_refused_and_writes_nothing(node, client_for):
    admin = client_for(node, "admin")
    doc_id = _draft(node, admin, unit="b", title="审计局任务清单")
    head = node.head("units")
    r = _revise(admin, node, doc_id, ITEMS_V1, "没有改动", title="审计局任务清单")
    assert r.status_code == 400 and "修订内容与当前版本相同" in r.text
    r = _revise(admin, node, doc_id, [], "清空", title="审计局任务清单")
    assert r.status_code == 400 and "至少填写一条" in r.text
    r = _revise(admin, node, doc_id, [("新条目", "", "很多")], "分值不是数字", title="审计局任务清单")
    assert r.status_code == 400 and "应为数字" in visible(r.text)
    assert node.head("units") == head


def test_without_the_csrf_code_a_revision_is_refused_in_chinese_and_writes_nothing(node, client_for):
    admin = client_for(node, "admin")
    doc_id = _draft(node, admin, title="无校验码测试清单")
    head = node.head("units")
    r = admin.s.post(node.url + "/documents/%s/revise" % doc_id, allow_redirects=False,
                     data={"title": "改过的标题", "note": "伪造", "item_text": "伪造条目",
                           "item_post": "", "item_score": ""})
    assert r.status_code == 403
    assert "请求缺少有效的安全校验码，已被拒绝，未做任何修改" in visible(r.text)
    r = admin.s.post(node.url + "/people/%s/promote" % node.people["zhang"], allow_redirects=False,
                     data={"new_post": "副局长", "unit_id": node.ids["a"], "effective_on": "2026-12-01",
                           "_csrf": "forged"})
    assert r.status_code == 403 and "安全校验码" in visible(r.text)
    assert node.head("units") == head
    # supervision's editors too: nothing reaches the service
    sv_head = node.head("supervision")
    for path, data in (("/checklists", {"c0_name": "伪造的标准", "c0_max": "10", "note": "伪造"}),
                       ("/inspections/batch", {"unit_ids": node.ids["a"], "title": "伪造的批量检查",
                                               "planned_on": "2030-01-01"}),
                       ("/ecology/rounds", {"title": "伪造的轮次", "period": "2026",
                                            "unit_id": node.ids["root"]})):
        r = admin.s.post(node.url + path, data=data, allow_redirects=False)
        assert r.status_code == 403 and "安全校验码" in visible(r.text), path
    assert node.head("supervision") == sv_head


def test_a_unit_admin_is_refused_another_subtrees_lists_people_and_unit(node, client_for):
    admin = client_for(node, "admin")
    doc_b = _draft(node, admin, unit="b", title="审计局责任清单")
    node.api("units", "draft_micro_power", {"unit_id": node.ids["b"], "post": "审计复核岗", "content": {
        "duties": ["复核审计报告草稿"], "power_boundary": "审计局内部复核",
        "steps": [{"name": "复核", "responsible_post": "复核岗"}]}})
    ua = client_for(node, "ua-a")
    for path in ("/documents/%s" % doc_b, "/documents/%s/compare?from=1&to=1" % doc_b,
                 "/micro-power/edit?unit_id=%s&post=审计复核岗" % node.ids["b"],
                 "/people/%s" % node.people["li"], "/units/%s" % node.ids["b"],
                 "/units/%s/documents/new" % node.ids["b"]):
        r = ua.get(path)
        assert r.status_code in (403, 404), path
        assert "审计局责任清单" not in r.text and "李审计" not in r.text, path
        assert "复核审计报告草稿" not in r.text, path  # another subtree's unpublished draft
    head = node.head("units")
    r = _revise(ua, node, doc_b, [("越权修订", "", "")], "越权")
    assert r.status_code in (403, 404)
    r = ua.post("/people/%s/promote" % node.people["li"], {
        "new_post": "越权提拔", "unit_id": node.ids["b"], "effective_on": "2026-12-01"})
    assert r.status_code in (403, 404)
    # nor may they move their own person into the other subtree
    r = ua.post("/people/%s/promote" % node.people["zhang"], {
        "new_post": "审计局副局长", "unit_id": node.ids["b"], "effective_on": "2026-12-01"})
    assert r.status_code in (403, 404)
    assert node.head("units") == head
    # their own subtree opens
    assert ua.get("/people/%s" % node.people["zhang"]).status_code == 200


def test_a_viewer_sees_no_write_buttons_and_hand_made_posts_are_refused(node, client_for):
    admin = client_for(node, "admin")
    doc_id = _draft(node, admin, title="查看员测试清单")
    viewer = client_for(node, "viewer")
    for path in ("/documents/%s" % doc_id, "/people/%s" % node.people["zhang"],
                 "/units/%s" % node.ids["a"], "/ecology/system", "/ecology/rounds", "/checklists",
                 "/inspections"):
        page = viewer.get(path)
        assert page.status_code == 200, path
        assert post_forms(page.text) == ["/logout"], (path, post_forms(page.text))
        assert "新建清单" not in page.text and "记录提拔" not in page.text
    head, sv_head = node.head("units"), node.head("supervision")
    assert _revise(viewer, node, doc_id, [("查看员改的", "", "")], "x").status_code == 403
    assert viewer.post("/people/%s/promote" % node.people["zhang"], {
        "new_post": "查看员提拔", "unit_id": node.ids["a"],
        "effective_on": "2026-12-01"}).status_code == 403
    assert viewer.post("/units/%s/documents/new" % node.ids["a"], {
        "kind": "task_list", "title": "查看员的清单", "item_text": "x", "item_post": "",
        "item_score": ""}).status_code == 403
    assert viewer.post("/checklists", {"c0_name": "查看员标准", "c0_max": "10",
                                       "note": "x"}).status_code == 403
    assert viewer.post("/inspections/batch", {"unit_ids": node.ids["a"], "title": "查看员批量",
                                              "planned_on": "2030-01-01"}).status_code == 403
    assert viewer.post("/ecology/system", {"d0_name": "查看员维度", "note": "x"}).status_code == 403
    assert viewer.post("/ecology/rounds", {"title": "查看员轮次", "period": "2026",
                                           "unit_id": node.ids["root"]}).status_code == 403
    assert node.head("units") == head and node.head("supervision") == sv_head


def test_a_script_as_a_unit_or_person_name_is_text_on_the_new_pages(node, client_for):
    admin = client_for(node, "admin")
    doc_id = _draft(node, admin, unit="xss", items=[(XSS, XSS, "1")], title=XSS)
    assert _revise(admin, node, doc_id, [(XSS + "2", XSS, "2")], XSS, title=XSS).status_code == 303
    for path in ("/documents/%s" % doc_id, "/documents/%s/compare?from=1&to=2" % doc_id,
                 "/people/%s" % node.people["xss"], "/units/%s/documents/new" % node.ids["xss"],
                 "/inspections", "/ecology/rounds"):
        page = admin.get(path).text
        assert XSS not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


# -- people: promotion, and the integrity talk it schedules ------------------------------------------
def test_a_promotion_is_recorded_and_the_integrity_talk_it_schedules_shows(node, client_for):
    ua = client_for(node, "ua-a")
    person = node.people["zhang"]
    page = ua.get("/people/%s" % person).text
    fields = form_of(page, "promote-form")
    assert ("unit_id", node.ids["a"]) in fields  # the picker: chosen, not typed
    fields = _set(_set(fields, "new_post", "预算科副科长（新提拔）"), "effective_on", "2026-11-20")
    r = ua.s.post(node.url + "/people/%s/promote" % person, data=fields, allow_redirects=False)
    assert r.status_code == 303
    page = ua.get("/people/%s" % person).text
    assert "2026年11月20日 周五" in page and "预算科副科长（新提拔）" in page

    def talk_shown():
        text = visible(ua.get("/people/%s" % person).text)
        return "待谈话" in text or "已逾期" in text
    wait_for(talk_shown, timeout=30)
    text = visible(ua.get("/people/%s" % person).text)
    assert re.search(r"廉政谈话.*预算科副科长（新提拔）.*2026年11月20日", text, re.S)
    no_codes(page, "scheduled", "overdue")
    # the same post and unit again: refused in Chinese, nothing written
    head = node.head("units")
    r = ua.s.post(node.url + "/people/%s/promote" % person, data=fields, allow_redirects=False)
    assert r.status_code == 400 and "新岗位与现任岗位相同" in r.text
    assert node.head("units") == head


def test_roles_are_set_and_removed_on_the_person_page(node, client_for):
    admin = client_for(node, "admin")
    person = node.people["li"]
    assert admin.post("/people/%s/roles" % person, {"role": "discipline_member",
                                                    "part_time": "1"}).status_code == 303
    page = admin.get("/people/%s" % person).text
    assert "纪检委员" in visible(page) and "兼职" in visible(page)
    assert admin.post("/people/%s/roles/remove" % person,
                      {"role": "discipline_member"}).status_code == 303
    assert "未担任职务" in admin.get("/people/%s" % person).text
    head = node.head("units")
    r = admin.post("/people/%s/roles/remove" % person, {"role": "discipline_member"})
    assert r.status_code == 400 and "未担任" in visible(r.text)
    assert node.head("units") == head


# -- 政治生态研判: the indicator system, rounds, manual scores -------------------------------------------------
def test_the_indicator_system_is_revised_from_its_editor_and_bad_weights_write_nothing(node, client_for):
    admin = client_for(node, "admin")
    page = admin.get("/ecology/system").text
    assert "现行第 1 版" in page and "人工评分" in page and "40%" in page
    no_codes(page, "integrity_building", "rectification_closure_rate", "manual")
    fields = form_of(page, "system-editor")
    assert not any(v.startswith("ind_") for k, v in fields if k.endswith("_name"))
    head = node.head("supervision")
    # weights that do not add up: the service's message, in Chinese, naming the dimension
    bad = _set(_set(fields, "d0_weight", "40"), "note", "权重调整")
    r = admin.s.post(node.url + "/ecology/system", data=bad, allow_redirects=False)
    assert r.status_code == 400 and "各维度权重之和为 0.9，应为 1" in visible(r.text)
    r = admin.s.post(node.url + "/ecology/system", allow_redirects=False,
                     data=_set(_set(fields, "d1_i0_weight", "很多"), "note", "x"))
    assert r.status_code == 400 and "权重: 请填写数字" in visible(r.text)
    assert node.head("supervision") == head
    # a new manual indicator under 精神文明创建情况, weights moved to make room
    good = _set(_set(_set(fields, "d2_i0_weight", "40"), "d2_i2_name", "志愿服务"), "d2_i2_weight", "10")
    good = _set(_set(good, "d2_i2_max", "50"), "note", "增加志愿服务指标")
    r = admin.s.post(node.url + "/ecology/system", data=good, allow_redirects=False)
    assert r.status_code == 303, visible(r.text)
    page = admin.get("/ecology/system").text
    assert "现行第 2 版" in page and "志愿服务" in page
    old = admin.get("/ecology/system?version=1").text
    assert "第 1 版" in old and "志愿服务" not in old.split("修订指标体系")[0]


def test_a_round_is_opened_scored_by_hand_collected_and_finalized(node, client_for):
    insp = client_for(node, "insp")

    def directory_ready():  # supervision learns of the units from their events
        return insp.post("/ecology/rounds", {"title": "探测轮次", "period": "2025",
                                             "unit_id": node.ids["root"]}).status_code == 303
    wait_for(directory_ready, timeout=30)
    page = insp.get("/ecology/rounds").text
    r = insp.post("/ecology/rounds", {"title": "2026年度政治生态分析研判", "period": "2026",
                                      "unit_id": node.ids["root"]})
    assert r.status_code == 303
    round_path = r.headers["Location"]
    page = insp.get(round_path).text
    assert "2026年" in page and "评分中" in page and "区财政局" in page and "区审计局" in page
    no_codes(page, "open", "unity", "manual")
    fields = form_of(page, "scores-form")
    cells = [k for k, _ in fields if k.startswith("s_")]
    assert cells and all(v == "" for k, v in fields if k.startswith("s_"))
    head = node.head("supervision")
    # a score over the indicator's maximum: refused, nothing written
    over = [(k, "120" if k == cells[0] else v) for k, v in fields]
    r = insp.s.post(node.url + round_path, data=over, allow_redirects=False)
    assert r.status_code == 400 and "须在 0 到 100 之间" in visible(r.text)
    assert node.head("supervision") == head
    # every manual cell scored
    filled = [(k, "45" if k.startswith("s_%s_" % node.ids["a"]) else "40" if k.startswith("s_") else v)
              for k, v in fields]  # within every maximum (a revised system may add one of 50)
    r = insp.s.post(node.url + round_path, data=filled, allow_redirects=False)
    assert r.status_code == 303
    page = insp.get(round_path).text
    assert 'value="45"' in page and 'value="40"' in page
    # finalising before the platform's facts are collected is refused
    assert "定稿前请先采集平台数据" in insp.post(round_path, {"action": "finalize"}).text
    assert insp.post(round_path, {"action": "collect"}).status_code == 303
    assert insp.post(round_path, {"action": "finalize"}).status_code == 303
    page = insp.get(round_path).text
    assert "已定稿" in page and "定稿排名" in page and 'name="s_' not in page
    ranking = visible(page).split("定稿排名")[1]
    assert ranking.index("区财政局") < ranking.index("区审计局")
    # the viewer: no forms, and a hand-made score is refused
    viewer = client_for(node, "viewer")
    assert post_forms(viewer.get(round_path).text) == ["/logout"]
    assert viewer.post(round_path, {"action": "scores"}).status_code == 403


# -- 检查督导: batches and checklist versions -------------------------------------------------------------
def test_a_batch_is_planned_from_the_tree_and_the_checklist_is_revised_to_a_new_version(node, client_for):
    admin = client_for(node, "admin")
    head = node.head("supervision")
    r = admin.post("/inspections/batch", {"title": "年终检查", "planned_on": "2030-12-01"})
    assert r.status_code == 400 and "至少选择一个单位" in r.text and node.head("supervision") == head
    page = admin.get("/inspections").text
    assert 'id="batch-form"' in page and 'type="checkbox" name="unit_ids"' in page
    r = admin.s.post(node.url + "/inspections/batch", allow_redirects=False, data=[
        ("unit_ids", node.ids["a"]), ("unit_ids", node.ids["b"]), ("title", "2030年度集中检查"),
        ("planned_on", "2030-12-01"), ("_csrf", admin.csrf("/account"))])
    assert r.status_code == 303
    listed = visible(admin.get("/inspections").text)
    assert listed.count("2030年度集中检查") == 2 and "批量" in listed and "第 1 版" in listed
    # the checklist: four criteria in force, revised into version 2 from its editor
    page = admin.get("/checklists").text
    for name in ("规定动作全不全", "自选动作实不实", "业务融合紧不紧", "问题整改快不快"):
        assert name in page
    no_codes(page, "prescribed_actions", "rectification_speed")
    fields = form_of(page, "checklist-editor")
    fields = _set(_set(_set(fields, "c4_name", "群众满意好不好"), "c4_max", "20"), "note", "增加群众满意度")
    r = admin.s.post(node.url + "/checklists", data=fields, allow_redirects=False)
    assert r.status_code == 303
    page = admin.get("/checklists").text
    assert "现行第 2 版" in page and "群众满意好不好" in page
    assert "群众满意好不好" not in admin.get("/checklists?version=1").text.split("修订检查清单")[0]
    r = admin.post("/inspections", {"unit_id": node.ids["a"], "title": "新版清单检查",
                                    "planned_on": "2030-12-02"})
    new_page = admin.get(r.headers["Location"]).text
    assert "检查清单第 2 版" in new_page and "群众满意好不好" in new_page
    # completing with criteria unscored: named in Chinese
    r = admin.post(r.headers["Location"], {"action": "complete"})
    assert r.status_code == 400 and "以下考核标准尚未评分：规定动作全不全" in visible(r.text)
    # an empty checklist is refused and writes nothing
    head = node.head("supervision")
    empty = [(k, "" if k.endswith("_name") else v) for k, v in fields]
    r = admin.s.post(node.url + "/checklists", data=empty, allow_redirects=False)
    assert r.status_code == 400 and "至少要有一项" in r.text and node.head("supervision") == head


def test_feedback_names_who_was_told_picked_from_the_units_people(node, client_for):
    admin = client_for(node, "admin")
    r = admin.post("/inspections", {"unit_id": node.ids["a"], "title": "现场反馈检查",
                                    "planned_on": "2030-12-03"})
    path = r.headers["Location"]
    page = admin.get(path).text
    assert '<datalist id="unit-people">' in page and 'value="张科长"' in page
    r = admin.post(path, {"action": "feedback", "told_role": "party_secretary", "told_name": "张科长",
                          "summary": "现场通报检查情况"})
    assert r.status_code == 303
    assert "张科长（党组织书记）" in visible(admin.get(path).text)
