"""CSV and XLSX files of the lists a unit hands in (问题清单 / 责任清单 / 整改清单) and of a
round's ranking. Pure rendering: the data comes from the same queries RPC callers get.

CSV is written with a UTF-8 byte-order mark: Excel on a district office's PC opens a
BOM-less UTF-8 file as GBK and shows the Chinese headers as mojibake.
"""
from __future__ import annotations

import csv
import io
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    return value


def render_csv(table: dict) -> bytes:
    """``table``: {"title", "columns": [{key, title}], "rows": [dict]}."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c["title"] for c in table["columns"]])
    for row in table["rows"]:
        writer.writerow([_cell(row.get(c["key"])) for c in table["columns"]])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def render_xlsx(tables: list[dict], heading: str | None = None) -> bytes:
    """One sheet per table, header row bold and frozen, columns sized to their content."""
    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for table in tables:
        ws = wb.create_sheet(title=table["title"][:31])
        first = 1
        if heading:
            ws.cell(row=1, column=1, value="%s - %s" % (heading, table["title"])).font = Font(
                bold=True, size=13)
            first = 2
        for col, c in enumerate(table["columns"], start=1):
            cell = ws.cell(row=first, column=col, value=c["title"])
            cell.font, cell.fill = bold, fill
        widths = [len(c["title"]) * 2 + 2 for c in table["columns"]]
        for n, row in enumerate(table["rows"], start=first + 1):
            for col, c in enumerate(table["columns"], start=1):
                value = _cell(row.get(c["key"]))
                cell = ws.cell(row=n, column=col, value=value)
                if isinstance(value, str) and len(value) > 30:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
                widths[col - 1] = max(widths[col - 1], min(60, len(str(value)) * 2 + 2))
        for col, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(col)].width = w
        ws.freeze_panes = ws.cell(row=first + 1, column=1)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name (Chinese file names)."""
    fallback = "".join(ch if ch.isascii() and ch not in '"\\' else "_" for ch in filename)
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (fallback, quote(filename))


def ranking_table(data: dict) -> dict:
    """A round's ranking as a table (排名 / 单位 / 总分 / one column per dimension)."""
    dims = data["round"]["dimensions"]
    columns = [{"key": "rank", "title": "排名"}, {"key": "unit_name", "title": "单位"},
               {"key": "total", "title": "总分"}]
    columns += [{"key": "dim:" + d["code"], "title": "%s(%g)" % (d["name"], d["weight"])}
                for d in dims]
    columns.append({"key": "missing", "title": "缺少数据的指标"})
    rows = []
    for e in data["ranking"]:
        row = {"rank": e["rank"], "unit_name": e.get("unit_name") or e["unit_id"],
               "total": e["total"], "missing": "、".join(e["missing"])}
        for d in dims:
            row["dim:" + d["code"]] = e["dimensions"].get(d["code"])
        rows.append(row)
    return {"title": "排名", "columns": columns, "rows": rows}
