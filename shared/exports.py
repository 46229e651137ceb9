"""Files an office prints, files and sends upward (台账): one description of a table report
rendered to XLSX, PDF and CSV, so every service and the console export the same way.

A ``Report`` says what the file is (title, unit, period, node, export time) and holds one
or more ``Table``s; each column has a Chinese header, a kind (how its values are stored
and shown) and optionally a width. What follows from that, once, here:

* XLSX: A4, landscape when the columns are too wide for portrait, fit to one page wide,
  the header row repeated on every printed page, a title row with the unit and period,
  a footer with the page number, the export time and the node; long text wraps; dates
  are real dates shown as 2024年3月31日 (Excel and LibreOffice print the file unchanged).
* PDF: the same pages drawn by reportlab, with a CJK TrueType font embedded (subset), so
  the file prints the same on a machine without Chinese fonts.
* CSV: one table, UTF-8 with a byte-order mark: Excel on a district office's PC opens a
  BOM-less UTF-8 file as GBK and shows the Chinese headers as mojibake.
"""
from __future__ import annotations

import csv
import io
import os
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

import eventlet.patcher
from eventlet import tpool
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.pagesizes import landscape as turned
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate, Frame, LongTable, NextPageTemplate, PageBreak, PageTemplate, Paragraph,
    Spacer, TableStyle,
)
from werkzeug.wrappers import Response

from shared.errors import QinglianError

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PDF_TYPE = "application/pdf"
MIMETYPES = {"xlsx": XLSX_TYPE, "pdf": PDF_TYPE, "csv": CSV_TYPE}
FORMAT_ZH = "xlsx（Excel 表格）、pdf（打印版）或 csv（单张清单）"

# kind -> Excel number format; the PDF shows the same value the same way (``display``)
NUMBER_FORMATS = {
    "date": 'yyyy"年"m"月"d"日"',
    "datetime": 'yyyy"年"m"月"d"日" hh:mm',
    "integer": "0",
    "number": "0.00",
    "percent": "0.0%",
}
KINDS = ("text", "longtext", "bool") + tuple(NUMBER_FORMATS)

# Widths are in characters of the default font; a CJK character counts two.
# A4 minus the margins below holds about this many in portrait: beyond it, landscape.
PORTRAIT_WIDTH = 95
_KIND_WIDTH = {"date": 14, "datetime": 19, "number": 10, "percent": 9, "integer": 6, "bool": 6}
TEXT_MAX_WIDTH = 24      # a text column wider than this wraps instead
LONGTEXT_WIDTH = 32


class ExportUnavailable(QinglianError):
    """The server lacks what a format needs (the CJK font for PDF): an operator's fix."""

    status = 503
    code = "export_unavailable"


# -- the description -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"
    width: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError("column %s: unknown kind %r (one of %s)" % (self.key, self.kind, KINDS))


@dataclass
class Table:
    """``title`` names the sheet; ``caption`` (default: the title) is what the title line says."""

    title: str
    columns: list[Column]
    rows: list[dict]
    caption: str | None = None

    @classmethod
    def of(cls, d: dict) -> "Table":
        """From the plain dict queries return: {title, columns: [{key, title, kind?, width?}],
        rows, caption?}."""
        return cls(d["title"], [Column(c["key"], c["title"], c.get("kind", "text"), c.get("width"))
                                for c in d["columns"]], d["rows"], d.get("caption"))


@dataclass
class Report:
    """``exported_at`` is aware: the footer shows it in its own zone (the users')."""

    title: str
    unit: str
    period: str
    node: str
    exported_at: datetime
    tables: list[Table] = field(default_factory=list)

    def __post_init__(self):
        if self.exported_at.tzinfo is None:
            raise ValueError("exported_at must be timezone-aware")
        self.tables = [t if isinstance(t, Table) else Table.of(t) for t in self.tables]

    def heading(self, table: Table) -> str:
        """The title line above a table: the unit, what it is and its period."""
        return "%s %s（%s）" % (self.unit, table.caption or table.title, self.period)

    @property
    def footer_time(self) -> str:
        return "导出时间：%s" % zh_datetime(self.exported_at)

    @property
    def footer_node(self) -> str:
        return "节点：%s" % self.node


def zh_date(d: date) -> str:
    return "%d年%d月%d日" % (d.year, d.month, d.day)


def zh_datetime(dt: datetime) -> str:
    return "%s %02d:%02d" % (zh_date(dt), dt.hour, dt.minute)


def text_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cell_value(column: Column, value, tz=None):
    """The value as stored in the workbook: dates as dates, numbers as numbers, text as text."""
    if value is None or value == "":
        return None if column.kind not in ("text", "longtext") else ""
    kind = column.kind
    if kind == "bool" or isinstance(value, bool):
        return "是" if value else "否"
    if kind == "date":
        return value if isinstance(value, date) and not isinstance(value, datetime) \
            else date.fromisoformat(str(value)[:10])
    if kind == "datetime":
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(
            str(value).replace("Z", "+00:00"))
        # Excel has no zones: a moment is written as the users' wall-clock time
        return (dt.astimezone(tz) if tz and dt.tzinfo else dt).replace(tzinfo=None)
    if kind in ("integer", "number", "percent"):
        return value
    return str(value)


def display(column: Column, value) -> str:
    """A stored value (``cell_value``) as the printed page shows it."""
    if value is None:
        return ""
    kind = column.kind
    if kind == "date":
        return zh_date(value)
    if kind == "datetime":
        return zh_datetime(value)
    if kind == "integer" and isinstance(value, (int, float)):
        return "%d" % value
    if kind == "number" and isinstance(value, (int, float)):
        return "%.2f" % value
    if kind == "percent" and isinstance(value, (int, float)):
        return "%.1f%%" % (value * 100)
    return str(value)


def _values(report: Report, table: Table) -> list[list]:
    tz = report.exported_at.tzinfo
    return [[cell_value(c, row.get(c.key), tz) for c in table.columns] for row in table.rows]


def widths(table: Table, values: list[list]) -> list[float]:
    """Each column's width: given, or from its kind, or from its content up to a cap."""
    out = []
    for i, c in enumerate(table.columns):
        header = text_width(c.title) + 2
        if c.width:
            w = c.width
        elif c.kind == "longtext":
            longest = max((text_width(str(v[i] or "")) for v in values), default=0)
            w = min(LONGTEXT_WIDTH, max(header, longest + 2, 16))
        elif c.kind in _KIND_WIDTH:
            w = max(header, _KIND_WIDTH[c.kind])
        else:
            longest = max((text_width(display(c, v[i])) for v in values), default=0)
            w = max(header, min(TEXT_MAX_WIDTH, longest + 2))
        out.append(w)
    return out


def landscape(col_widths: list[float]) -> bool:
    return sum(col_widths) > PORTRAIT_WIDTH


# -- XLSX ------------------------------------------------------------------------------------------
def _footer_text(text: str) -> str:
    return text.replace("&", "&&")  # '&' starts a field code in Excel's header/footer language


def render_xlsx(report: Report) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    thin = Side(style="thin", color="808080")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    head_font, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    head_align = Alignment(horizontal="center", vertical="center", wrap_text=True)
    body_align = Alignment(vertical="top", wrap_text=True)
    for table in report.tables:
        ws = wb.create_sheet(title=_sheet_name(table.title, wb.sheetnames))
        values = _values(report, table)
        col_widths = widths(table, values)
        ncols, last_row = len(table.columns), len(values) + 2
        last_col = get_column_letter(ncols)
        title = ws.cell(row=1, column=1, value=report.heading(table))
        title.font, title.alignment = Font(bold=True, size=14), Alignment(horizontal="center")
        if ncols > 1:
            ws.merge_cells("A1:%s1" % last_col)
        ws.row_dimensions[1].height = 24
        for col, c in enumerate(table.columns, start=1):
            cell = ws.cell(row=2, column=col, value=c.title)
            cell.font, cell.fill, cell.alignment, cell.border = head_font, fill, head_align, border
        for n, row in enumerate(values, start=3):
            for col, (c, value) in enumerate(zip(table.columns, row), start=1):
                cell = ws.cell(row=n, column=col, value=value)
                cell.alignment, cell.border = body_align, border
                if c.kind in NUMBER_FORMATS:
                    cell.number_format = NUMBER_FORMATS[c.kind]
        for col, w in enumerate(col_widths, start=1):
            ws.column_dimensions[get_column_letter(col)].width = w
        ws.freeze_panes = "A3"
        # the page an office prints
        ps = ws.page_setup
        ps.paperSize = 9  # A4 in SpreadsheetML's numbering
        ps.orientation = "landscape" if landscape(col_widths) else "portrait"
        ps.fitToWidth, ps.fitToHeight = 1, 0  # one page wide, as many pages long as it takes
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_margins = PageMargins(left=0.5, right=0.5, top=0.6, bottom=0.7,
                                      header=0.3, footer=0.3)
        ws.print_options.horizontalCentered = True
        ws.print_title_rows = "2:2"
        ws.print_area = "A1:%s%d" % (last_col, last_row)
        footer = ws.oddFooter
        footer.left.text, footer.left.size = _footer_text(report.footer_time), 9
        footer.center.text, footer.center.size = "第 &P 页，共 &N 页", 9
        footer.right.text, footer.right.size = _footer_text(report.footer_node), 9
    wb.properties.title = report.title
    wb.properties.creator = report.node
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet_name(title: str, taken: list[str]) -> str:
    """Excel's limits: 31 characters, none of []:*?/\\, unique in the workbook."""
    name = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)[:31] or "Sheet"
    base, n = name, 2
    while name in taken:
        suffix = "(%d)" % n
        name, n = base[:31 - len(suffix)] + suffix, n + 1
    return name


# -- PDF -------------------------------------------------------------------------------------------
# TrueType outlines (reportlab embeds those, not CFF/OTF): Debian's fonts-wqy-zenhei first.
CJK_FONT_FILES = (
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
)
PDF_MAX_FONT, PDF_MIN_FONT = 9.5, 6  # points: a table's text, before and after fitting
_font_lock = threading.Lock()
_fonts: dict[str, str] = {}  # font file -> the name it is registered under in reportlab


def _cjk_font(font_file: str | None = None) -> str:
    """Register ``font_file`` (QINGLIAN_PDF_FONT), or else the first CJK font found, once."""
    candidates = ((font_file, 0),) if font_file else CJK_FONT_FILES
    for path, _ in candidates:
        if path in _fonts:
            return _fonts[path]
    with _font_lock:
        for path, index in candidates:
            if path in _fonts:
                return _fonts[path]
            if os.path.exists(path):
                name = "QinglianCJK%d" % len(_fonts)
                pdfmetrics.registerFont(TTFont(name, path, subfontIndex=index))
                _fonts[path] = name
                return name
    raise ExportUnavailable(
        "服务器未安装中文字体，无法生成 PDF：请安装 Debian 软件包 fonts-wqy-zenhei"
        "（或用 QINGLIAN_PDF_FONT 指定一个 TrueType 中文字体文件）")


def render_pdf(report: Report, font_file: str | None = None) -> bytes:
    font = _cjk_font(font_file)
    title_style = ParagraphStyle("title", fontName=font, fontSize=14, leading=18,
                                 alignment=TA_CENTER, spaceAfter=4 * mm, wordWrap="CJK")
    margin = 12 * mm

    class NumberedCanvas(Canvas):
        """Draws the footer once all pages are known: 第 n 页，共 N 页."""

        def __init__(self, *args, **kw):
            # no Helvetica reference left unembedded: every glyph comes from the CJK font
            kw.update(initialFontName=font, initialFontSize=8)
            super().__init__(*args, **kw)
            self._pages = []

        def showPage(self):  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for n, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                width, _ = self._pagesize
                self.setFont(font, 8)
                self.drawString(margin, 7 * mm, report.footer_time)
                self.drawCentredString(width / 2, 7 * mm, "第 %d 页，共 %d 页" % (n, total))
                self.drawRightString(width - margin, 7 * mm, report.footer_node)
                super().showPage()
            super().save()

    def template(name, size):
        frame = Frame(margin, 14 * mm, size[0] - 2 * margin, size[1] - margin - 14 * mm, id=name,
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        return PageTemplate(id=name, frames=[frame], pagesize=size)

    sizes = {"portrait": A4, "landscape": turned(A4)}
    story, first = [], None
    for n, table in enumerate(report.tables):
        values = _values(report, table)
        col_widths = widths(table, values)
        orientation = "landscape" if landscape(col_widths) else "portrait"
        if n == 0:
            first = orientation
        else:
            story += [NextPageTemplate(orientation), PageBreak()]
        usable = sizes[orientation][0] - 2 * margin
        scale = usable / sum(col_widths)
        # fit to the page's width as a spreadsheet does: a width unit is half a CJK character
        size = max(PDF_MIN_FONT, min(PDF_MAX_FONT, 2 * scale / 1.15))
        head_style = ParagraphStyle("head", fontName=font, fontSize=size, leading=size * 1.3,
                                    alignment=TA_CENTER, wordWrap="CJK")
        cell_style = ParagraphStyle("cell", fontName=font, fontSize=size, leading=size * 1.3,
                                    wordWrap="CJK")
        # figures line up on the right, as a spreadsheet shows them
        number_style = ParagraphStyle("number", parent=cell_style, alignment=TA_RIGHT)
        styles = [number_style if c.kind in ("integer", "number", "percent") else cell_style
                  for c in table.columns]
        data = [[Paragraph(escape(c.title), head_style) for c in table.columns]]
        data += [[Paragraph(escape(display(c, v)).replace("\n", "<br/>"), st)
                  for c, v, st in zip(table.columns, row, styles)] for row in values]
        if not values:
            data.append([Paragraph("（无记录）", cell_style)] + [""] * (len(table.columns) - 1))
        grid = LongTable(data, colWidths=[w * scale for w in col_widths], repeatRows=1)
        style = [("FONT", (0, 0), (-1, -1), font), ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                 ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDEBF7")),
                 ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                 ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
        if not values:
            style.append(("SPAN", (0, 1), (-1, 1)))
        grid.setStyle(TableStyle(style))
        story += [Paragraph(escape(report.heading(table)), title_style), Spacer(1, 1 * mm), grid]
    templates = [template(first or "portrait", sizes[first or "portrait"])]
    templates += [template(o, sizes[o]) for o in sizes if o != (first or "portrait")]
    buf = io.BytesIO()
    doc = BaseDocTemplate(buf, pagesize=sizes[first or "portrait"], pageTemplates=templates,
                          title=report.title, author=report.node, subject=report.period,
                          leftMargin=margin, rightMargin=margin, topMargin=margin,
                          bottomMargin=14 * mm)
    doc.build(story or [Spacer(1, 1)], canvasmaker=NumberedCanvas)
    return buf.getvalue()


# -- CSV -------------------------------------------------------------------------------------------
def render_csv(table: Table | dict) -> bytes:
    """One table; dates stay ISO (a CSV is read by programs as much as by people)."""
    table = table if isinstance(table, Table) else Table.of(table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.title for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(row.get(c.key)) for c in table.columns])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


# -- over HTTP -------------------------------------------------------------------------------------
def export_format(value: str | None, errors: dict) -> str:
    """The ``format`` a download asked for (xlsx by default); a wrong one is noted in
    ``errors`` (field -> Chinese messages) for the caller's one BadInput."""
    fmt = value or "xlsx"
    if fmt not in MIMETYPES:
        errors["format"] = ["应为 %s" % FORMAT_ZH]
    return fmt


def render(report: Report, fmt: str, font_file: str | None = None) -> bytes:
    if fmt == "xlsx":
        return render_xlsx(report)
    if fmt == "pdf":
        return render_pdf(report, font_file)
    return render_csv(report.tables[0])


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name (Chinese file names)."""
    fallback = "".join(ch if ch.isascii() and ch not in '"\\' else "_" for ch in filename)
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (fallback, quote(filename))


def download(report: Report, fmt: str, stem: str, font_file: str | None = None):
    """A werkzeug response carrying the file (``stem`` + the format's extension);
    ``font_file``: ``shared.config.pdf_font`` of the service's config.

    Rendering a long list takes seconds of CPU: under eventlet it runs in a native thread
    (``tpool``) so the service's other requests and consumers go on meanwhile."""
    if fmt == "pdf":
        _cjk_font(font_file)  # registered here, so the native thread only reads the registry
    if eventlet.patcher.is_monkey_patched("thread"):
        body = tpool.execute(render, report, fmt, font_file)
    else:
        body = render(report, fmt, font_file)
    return Response(body, status=200, content_type=MIMETYPES[fmt], headers={
        "Content-Disposition": content_disposition("%s.%s" % (stem, fmt))})
