"""The kernel's table reports (shared/exports.py): the page an office prints from the XLSX,
and the PDF drawn with an embedded CJK font. LibreOffice's view of the same workbooks is
tested with the supervision lists (services/supervision/tests/integration/test_application.py)."""
from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from shared import exports
from shared.exports import Column, ExportUnavailable, Report, Table, render_csv, render_pdf, \
    render_xlsx
from tests.office import embedded_fonts, pages_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPORTED = datetime(2024, 3, 31, 16, 5, tzinfo=SHANGHAI)
NARROW = [Column("no", "序号", "integer"), Column("name", "单位名称"),
          Column("due", "整改时限", "date"), Column("score", "得分", "number"),
          Column("done", "是否按期", "bool")]
WIDE = NARROW + [Column("what", "问题描述", "longtext"), Column("how", "整改要求", "longtext"),
                 Column("when", "登记时间", "datetime"), Column("rate", "完成率", "percent")]
LONG = "未按规定履行公务接待审批手续，接待清单与发票不符，陪餐人数超过规定标准。" * 2


def rows(n: int) -> list[dict]:
    return [{"no": i + 1, "name": "区财政局", "due": "2024-04-%02d" % (1 + i % 30),
             "score": 80 + i % 20 / 3, "done": i % 2 == 0, "what": LONG, "how": "一个月内完成整改",
             "when": "2024-03-01T01:30:00+00:00", "rate": 0.5} for i in range(n)]


def report(*tables: Table) -> Report:
    return Report(title="测试清单", unit="某区区直机关工委", period="2024年第一季度",
                  node="district-a&b", exported_at=EXPORTED, tables=list(tables))


def test_a_workbook_prints_on_a4_one_page_wide_with_title_footer_and_repeated_header():
    body = render_xlsx(report(Table("窄表", NARROW, rows(3)), Table("宽表", WIDE, rows(3))))
    wb = load_workbook(io.BytesIO(body))
    assert wb.sheetnames == ["窄表", "宽表"]
    for ws, orientation in ((wb["窄表"], "portrait"), (wb["宽表"], "landscape")):
        ps = ws.page_setup
        assert (ps.paperSize, ps.orientation) == (9, orientation)  # 9: A4 in SpreadsheetML
        assert (ps.fitToWidth, ps.fitToHeight, ws.sheet_properties.pageSetUpPr.fitToPage) == (
            1, 0, True)
        assert ws.print_title_rows == "$2:$2"  # the header row, on every page
        assert ws["A1"].value == "某区区直机关工委 %s（2024年第一季度）" % ws.title
        assert [c.value for c in ws[2]] == [c.title for c in (NARROW if ws.title == "窄表" else WIDE)]
        assert ws.oddFooter.center.text == "第 &P 页，共 &N 页"
        assert ws.oddFooter.left.text == "导出时间：2024年3月31日 16:05"
        assert ws.oddFooter.right.text == "节点：district-a&&b"  # a literal '&' is doubled
        assert ws.freeze_panes == "A3"
    ws = wb["宽表"]
    due, when = ws["C3"], ws["H3"]
    assert due.value == datetime(2024, 4, 1) and due.number_format == 'yyyy"年"m"月"d"日"'
    assert when.value == datetime(2024, 3, 1, 9, 30)  # the users' wall clock, not UTC
    assert ws["I3"].number_format == "0.0%" and ws["D3"].number_format == "0.00"
    assert ws["E3"].value == "是" and ws["E4"].value == "否"
    assert ws["F3"].value == LONG and ws["F3"].alignment.wrap_text
    assert ws.column_dimensions["F"].width == exports.LONGTEXT_WIDTH


def test_empty_values_stay_empty_and_sheet_names_follow_excel_rules():
    table = Table("问题/整改[清单]", NARROW, [{"no": 1, "name": None, "due": "", "score": None}])
    wb = load_workbook(io.BytesIO(render_xlsx(report(table, table))))
    assert wb.sheetnames == ["问题_整改_清单_", "问题_整改_清单_(2)"]
    assert [c.value for c in wb.worksheets[0][3]] == [1, None, None, None, None]


def test_a_pdf_of_three_rows_is_one_page_with_the_chinese_headers_and_an_embedded_font():
    pdf = render_pdf(report(Table("整改清单", WIDE, rows(3))))
    pages = pages_text(pdf)
    assert len(pages) == 1
    for c in WIDE:
        assert c.title in pages[0]
    assert "某区区直机关工委整改清单（2024年第一季度）" in pages[0]
    assert "2024年4月1日" in pages[0] and "第1页，共1页" in pages[0]
    assert "导出时间：2024年3月31日16:05" in pages[0] and "节点：district-a&b" in pages[0]
    fonts = embedded_fonts(pdf)
    assert fonts and all(fonts.values()), fonts


def test_a_long_pdf_repeats_the_header_on_every_page_and_each_table_starts_a_page():
    pdf = render_pdf(report(Table("整改清单", WIDE, rows(200)), Table("汇总", NARROW, rows(2))))
    pages = pages_text(pdf)
    assert len(pages) > 3
    for n, text in enumerate(pages[:-1], start=1):
        assert all(c.title in text for c in WIDE), n
        assert "第%d页，共%d页" % (n, len(pages)) in text
    assert "汇总" in pages[-1] and "问题描述" not in pages[-1]
    assert sum(text.count("区财政局") for text in pages[:-1]) == 200


def test_a_pdf_without_a_cjk_font_on_the_server_is_refused_in_chinese():
    with pytest.raises(ExportUnavailable) as caught:  # QINGLIAN_PDF_FONT names a missing file
        render_pdf(report(Table("整改清单", NARROW, rows(1))), "/nonexistent/font.ttf")
    assert caught.value.status == 503 and "fonts-wqy-zenhei" in caught.value.message


def test_a_description_that_cannot_be_rendered_is_refused_up_front():
    with pytest.raises(ValueError):
        Column("x", "某列", "money")
    with pytest.raises(ValueError):
        Report("t", "u", "p", "n", datetime(2024, 1, 1), [])


def test_csv_keeps_iso_dates_and_a_byte_order_mark():
    body = render_csv(Table("整改清单", NARROW, [{"no": 1, "name": "区财政局",
                                                   "due": date(2024, 4, 1), "done": True}]))
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig").splitlines() == ["序号,单位名称,整改时限,得分,是否按期",
                                                     "1,区财政局,2024-04-01,,是"]


def test_a_download_renders_beside_the_other_green_threads():
    """conftest monkey-patches eventlet as a service process does: while a long PDF renders,
    the service's other green threads (requests, consumers, heartbeats) still get turns."""
    import eventlet

    from shared.exports import download
    turns, rendering = [], [True]

    def other_work():
        while rendering[0]:
            turns.append(1)
            eventlet.sleep(0.005)

    eventlet.spawn(other_work)
    eventlet.sleep(0)
    before = len(turns)
    response = download(report(Table("整改清单", WIDE, rows(200))), "pdf", "整改清单")
    during = len(turns) - before
    rendering[0] = False
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert during >= 5, "the other green threads stood still while the file rendered"
