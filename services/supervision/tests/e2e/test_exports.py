"""The files an office prints and files (台账): the three lists and the 研判报告 as XLSX -
checked with openpyxl and printed to PDF by LibreOffice as an office would - and as the
platform's own PDF; then the same files downloaded over HTTP, and bad requests refused."""
from __future__ import annotations

import io
from datetime import datetime
from urllib.parse import unquote

import pytest
import requests
from openpyxl import load_workbook

from services.supervision.exports import LISTS, assessment_report, period_label, unit_lists_report
from services.supervision.queries import LIST_COLUMNS
from tests.harness.supervision import INSPECTOR, unit_admin
from services.supervision.tests.e2e.test_service import running  # noqa: F401 - the fixture
from shared.exports import render_pdf, render_xlsx
from tests.office import convert_to_pdf, embedded_fonts, landscape_pages, pages_text

EXPORTED = datetime.fromisoformat("2024-03-31T16:05:00+08:00")


def headers_of(key: str) -> list[str]:
    return [title for _, title, _ in LIST_COLUMNS[key][1]]


def check_page_setup(ws, orientation: str | None = None):
    """What makes a sheet print as one page wide with its header on every page."""
    ps = ws.page_setup
    assert ps.paperSize == 9, ws.title  # A4
    if orientation:
        assert ps.orientation == orientation, ws.title
    assert (ps.fitToWidth, ps.fitToHeight, ws.sheet_properties.pageSetUpPr.fitToPage) == (1, 0, True)
    assert ws.print_title_rows == "$2:$2", ws.title
    assert "第 &P 页，共 &N 页" == ws.oddFooter.center.text
    assert ws.oddFooter.left.text.startswith("导出时间：") and ws.oddFooter.right.text.startswith("节点：")


def findings(node, unit_id: str, n: int):
    for i in range(n):
        node.finding(unit_id, deadline="2024-04-%02d" % (1 + i % 30),
                     description="第%d项：公务接待超标准，未按规定履行审批手续，接待清单与发票不符" % (i + 1),
                     requirement="一个月内完成制度修订并退还超标准费用")


def test_the_lists_and_the_report_print_as_an_office_prints_them(node, tmp_path):
    node.district(("u1", "u2"))
    findings(node, "u1", 3)
    findings(node, "u2", 200)
    rnd = node.run("open_round", {"title": "2024年一季度政治生态研判", "period": "2024-Q1",
                                  "unit_id": "district"}, INSPECTOR)
    three, _ = unit_lists_report(node.query("unit_lists", {"unit_id": "u1"}, unit_admin("u1")),
                                 ["problems"], "district-a", EXPORTED)
    many, stem = unit_lists_report(node.query("unit_lists", {"unit_id": "u2"}, unit_admin("u2")),
                                   list(LISTS), "district-a", EXPORTED)
    assert stem == "单位u2_问题清单、责任清单、整改清单"
    report, stem = assessment_report(node.query("assessment_report", {"round_id": rnd["round_id"]}),
                                     "district-a", EXPORTED)
    assert stem == "2024年一季度政治生态研判_研判报告"
    files = {"three": three, "many": many, "report": report}
    for name, rep in files.items():
        (tmp_path / ("%s.xlsx" % name)).write_bytes(render_xlsx(rep))

    # the workbooks as openpyxl reads them
    wb = load_workbook(tmp_path / "three.xlsx")
    ws = wb["问题清单"]
    check_page_setup(ws)
    assert ws["A1"].value == "单位u1 问题清单（截至2024年3月31日）"
    assert [c.value for c in ws[2]] == headers_of("problems")
    assert ws["G3"].value == datetime(2024, 3, 1) and ws["G3"].number_format == 'yyyy"年"m"月"d"日"'
    assert ws["E3"].alignment.wrap_text
    wb = load_workbook(tmp_path / "many.xlsx")
    assert wb.sheetnames == ["问题清单", "责任清单", "整改清单"]
    for ws in wb.worksheets:
        check_page_setup(ws)
    assert wb["整改清单"].page_setup.orientation == "landscape"  # 13 columns
    assert wb["整改清单"].max_row == 202 and isinstance(wb["整改清单"]["F3"].value, datetime)
    wb = load_workbook(tmp_path / "report.xlsx")
    assert wb.sheetnames == ["排名", "研判意见"]
    for ws in wb.worksheets:
        check_page_setup(ws)
    assert wb["排名"]["A1"].value == "某区直机关工委 2024年一季度政治生态研判 排名（2024年第一季度）"

    # printed by LibreOffice (one run for the three files)
    printed = dict(zip(files, convert_to_pdf([tmp_path / ("%s.xlsx" % n) for n in files], tmp_path)))
    pages = pages_text(printed["three"])
    assert len(pages) == 1, "three rows print on one page (not %d)" % len(pages)
    assert all(h in pages[0] for h in headers_of("problems")) and "第1页，共1页" in pages[0]
    pages = pages_text(printed["many"])
    # three sheets of 200 rows: each list takes several pages, every one with its header row
    rect_pages = [p for p in pages if "整改清单" in p or "提交佐证日期" in p]
    assert len(pages) > 6 and len(rect_pages) > 2, len(pages)
    for n, text in enumerate(pages, start=1):
        assert "第%d页，共%d页" % (n, len(pages)) in text and "节点：district-a" in text
        assert any(all(h in text for h in headers_of(k)) for k in LISTS), "page %d lost its header" % n
    for text in rect_pages:
        assert all(h in text for h in headers_of("rectifications"))
    assert sum(text.count("一个月内完成制度修订") for text in rect_pages) == 200
    turned = landscape_pages(printed["many"])
    assert all(turned[n] for n, p in enumerate(pages) if p in rect_pages)  # 13 columns: landscape
    pages = pages_text(printed["report"])
    assert len(pages) == 2 and "排名" in pages[0] and "研判意见" in pages[1]

    # the platform's own PDF of the same
    pages = pages_text(render_pdf(three))
    assert len(pages) == 1 and all(h in pages[0] for h in headers_of("problems"))
    pdf = render_pdf(many)
    assert all(embedded_fonts(pdf).values())
    pages = pages_text(pdf)
    rect_pages = [p for p in pages if "单位u2整改清单" in p or "提交佐证日期" in p]
    assert len(rect_pages) > 2
    for text in rect_pages:
        assert all(h in text for h in headers_of("rectifications"))
    pages = pages_text(render_pdf(report))
    assert "排名" in pages[0] and "总分" in pages[0] and "研判意见" in pages[-1]


def test_a_title_says_the_subtree_and_the_moment_a_list_stands_at():
    data = {"unit_id": "u1", "unit_name": "x局", "include_subtree": True, "as_of": "2024-03-15",
            "problems": {"title": "问题清单", "columns": [], "rows": []}}
    report, stem = unit_lists_report(data, ["problems"], "district-a", EXPORTED)
    assert report.heading(report.tables[0]) == "x局（含下级单位） 问题清单（截至2024年3月15日）"
    data["as_of"] = "2024-03-15T02:30:00Z"  # a moment: said in the users' zone
    report, _ = unit_lists_report(data, ["problems"], "district-a", EXPORTED)
    assert report.period == "截至2024年3月15日 10:30" and stem == "x局_问题清单"


def test_period_labels_say_the_period_in_chinese():
    assert [period_label(p) for p in ("2024", "2024-H2", "2024-Q3", "2024-03")] == [
        "2024年度", "2024年下半年", "2024年第三季度", "2024年3月"]


# -- over HTTP ----------------------------------------------------------------------------------------------
def test_lists_and_report_download_as_pdf_and_printable_xlsx(running):
    finding = {"unit_id": "u1", "source": "financial", "description": "三重一大事项未集体决策",
               "responsible_role": "party_secretary", "deadline": "2024-04-30"}
    status, body = running.api.post("record_finding", finding)
    assert status == 201, body
    status, rnd = running.api.post("open_round", {"title": "2024年一季度研判", "period": "2024-Q1",
                                                  "unit_id": "qu"})
    assert status == 201, rnd
    base = "http://%s" % running.config["WEB_SERVER_ADDRESS"].replace("0.0.0.0", "127.0.0.1")
    auth = {"Authorization": "Bearer %s" % running.users["ua-u1"][1]}
    r = requests.get(base + "/export/unit_lists", params={"unit_id": "u1", "format": "pdf"},
                     headers=auth, timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf"
    assert unquote(r.headers["Content-Disposition"]).endswith("x局_问题清单、责任清单、整改清单.pdf")
    pages = pages_text(r.content)
    assert len(pages) == 3  # one list a page
    for key, text in zip(LISTS, pages):
        assert all(h in text for h in headers_of(key)) and "x局" in text
    assert "2024年4月30日" in pages[2] and "节点：district-test" in pages[2]
    r = requests.get(base + "/export/assessment_report",
                     params={"round_id": rnd["round_id"], "format": "pdf"}, headers=auth, timeout=60)
    assert r.status_code == 200
    pages = pages_text(r.content)
    assert "某区区直机关工委2024年一季度研判排名（2024年第一季度）" in pages[0] and "研判意见" in pages[-1]
    r = requests.get(base + "/export/assessment_report", params={"round_id": rnd["round_id"]},
                     headers=auth, timeout=60)
    for ws in load_workbook(io.BytesIO(r.content)).worksheets:
        check_page_setup(ws)


# (the last column: the message is this endpoint's own, so it is in Chinese)
@pytest.mark.parametrize("name, params, status, field, own", [
    ("unit_lists", {"unit_id": "u1", "format": "docx"}, 400, "format", True),
    ("unit_lists", {"unit_id": "u1", "format": "pdf", "list": "everything"}, 400, "list", True),
    ("unit_lists", {"unit_id": "u1", "format": "csv"}, 400, "list", True),
    ("ledger", {"format": "pdf"}, 404, None, True),
    ("unit_lists", {"unit_id": "u1", "format": "pdf", "as_of": "yesterday"}, 400, "as_of", False),
    ("assessment_report", {"format": "pdf"}, 400, "round_id", False),
    ("assessment_report", {"round_id": "no-such-round", "format": "pdf"}, 404, None, False),
    ("unit_lists", {"unit_id": "u2", "format": "pdf"}, 403, None, False),
])
def test_a_bad_export_request_is_refused_and_writes_nothing(running, name, params, status, field,
                                                            own):
    base = "http://%s" % running.config["WEB_SERVER_ADDRESS"].replace("0.0.0.0", "127.0.0.1")
    before = running.head()
    r = requests.get(base + "/export/" + name, params=params, timeout=30,
                     headers={"Authorization": "Bearer %s" % running.users["ua-u1"][1]})
    assert r.status_code == status, r.text
    body = r.json()
    if field:
        assert field in body["fields"], body
    if own:
        said = body["message"] + "".join(m for ms in body.get("fields", {}).values() for m in ms)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in said), body
    assert running.head() == before
