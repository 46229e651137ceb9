"""四种形态 in the console: inspectors see the records; everyone else the counts per form
and quarter only (supervision refuses the records to any other role, so the page only
asks for what the user may see)."""
from __future__ import annotations

from services.console.web import page
from services.supervision.domain import DISCIPLINE_FORM_NAMES, DISCIPLINE_FORMS

DISCIPLINE_READERS = ("inspector",)  # supervision's DISCIPLINE: deliberately not node-admin


@page("/discipline")
def discipline(web):
    period = web.arg("period") or None
    counts = web.query("supervision", "discipline_counts", {"period": period} if period else {})
    records = None
    if web.can(*DISCIPLINE_READERS):
        records = web.query("supervision", "list_discipline_records",
                            {"period": period} if period else {})["records"]
    return web.render("discipline.html", counts=counts["periods"], records=records,
                      forms=DISCIPLINE_FORMS, form_names=DISCIPLINE_FORM_NAMES, period=period or "")
