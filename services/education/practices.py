"""清廉机关实践 read side: 我为清廉机关建设献一策 (suggestions, their handling and adoption),
集中廉政承诺 (pledges) and 典型案例通报 (typical cases pushed to a subtree, with receipts).

The tables share the education service's ``metadata``; the handlers touch rows by key only
(a rebuild and an as-of replay stay linear). Query helpers are plain ``(conn, ...)``
functions; ``practices_app.py`` declares the operations.
"""
from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text, select

from services.education.domain import ADOPTED_OUTCOMES, adoption_rate, study_state
from services.education.projections import metadata
from shared.errors import NotFound
from shared.projections import Projection, on
from shared.unittree import subtree_of, unit_directory

suggestions = Table(
    "edu_suggestions", metadata,
    Column("suggestion_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("proposer_id", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("content", Text, nullable=False),
    Column("submitted_on", String(10), nullable=False),
    Column("year", Integer, nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("handler", String(100)),
    Column("accepted_on", String(10)),
    Column("progress", Text),            # the latest 办理 note
    Column("progress_on", String(10)),
    Column("notes", Integer, nullable=False, default=0),
    Column("reply", Text),
    Column("outcome", String(20)),
    Column("answered_on", String(10)),
)


bulletins = Table(
    "edu_case_bulletins", metadata,
    Column("bulletin_id", String(100), primary_key=True),
    Column("issuer_unit_id", String(100), nullable=False),
    Column("scope_unit_id", String(100), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("requirements", Text, nullable=False),
    Column("issued_on", String(10), nullable=False),
    Column("due_on", String(10)),
    Column("case_ref", String(200)),
    Column("recipients", Integer, nullable=False),
)

bulletin_receipts = Table(
    "edu_case_receipts", metadata,
    Column("bulletin_id", String(100), primary_key=True),
    Column("unit_id", String(100), primary_key=True),
    Column("studied_on", String(10)),
    Column("headcount", Integer),
    Column("note", Text),
    Column("by_user", String(100)),
)


class Practices(Projection):
    name = "education_practices"
    tables = (suggestions, bulletins, bulletin_receipts)

    # -- 献一策 ---------------------------------------------------------------------------------
    @on("Suggestion.Submitted")
    def suggestion_submitted(self, w, e):
        p = e.payload
        w.insert(suggestions, suggestion_id=p["suggestion_id"], unit_id=p["unit_id"],
                 proposer_id=p["proposer_id"], title=p["title"], content=p["content"],
                 submitted_on=p["submitted_on"], year=p["year"], status="submitted", notes=0)

    @on("Suggestion.Accepted")
    def suggestion_accepted(self, w, e):
        p = e.payload
        w.update(suggestions, {"suggestion_id": p["suggestion_id"]}, status="accepted",
                 handler=p["handler"], accepted_on=p["accepted_on"])

    @on("Suggestion.Progressed")
    def suggestion_progressed(self, w, e):
        p = e.payload
        row = w.get(suggestions, suggestion_id=p["suggestion_id"])
        w.update(suggestions, {"suggestion_id": p["suggestion_id"]}, status="in_progress",
                 progress=p["note"], progress_on=p["on"], notes=(row["notes"] if row else 0) + 1)

    @on("Suggestion.Answered")
    def suggestion_answered(self, w, e):
        p = e.payload
        w.update(suggestions, {"suggestion_id": p["suggestion_id"]}, status="answered",
                 reply=p["reply"], outcome=p["outcome"], answered_on=p["answered_on"])


    # -- 典型案例通报 ------------------------------------------------------------------------------
    @on("CaseBulletin.Issued")
    def bulletin_issued(self, w, e):
        p = e.payload
        w.insert(bulletins, bulletin_id=p["bulletin_id"], issuer_unit_id=p["issuer_unit_id"],
                 scope_unit_id=p["scope_unit_id"], title=p["title"], summary=p["summary"],
                 requirements=p["requirements"], issued_on=p["issued_on"], due_on=p.get("due_on"),
                 case_ref=p.get("case_ref"), recipients=len(p["unit_ids"]))
        for unit_id in p["unit_ids"]:
            w.insert(bulletin_receipts, bulletin_id=p["bulletin_id"], unit_id=unit_id)

    @on("CaseStudyReceipt.Studied")
    def bulletin_studied(self, w, e):
        p = e.payload
        w.update(bulletin_receipts, {"bulletin_id": p["bulletin_id"], "unit_id": p["unit_id"]},
                 studied_on=p["studied_on"], headcount=p["headcount"], note=p["note"], by_user=p["by"])


PRACTICES = Practices()


def _units(conn, unit_id: str) -> dict[str, dict]:
    return {u["unit_id"]: u for u in subtree_of(conn, unit_directory, unit_id, include_inactive=True)}


# -- 献一策 ---------------------------------------------------------------------------------------
def require_suggestion_unit(conn, suggestion_id: str) -> str:
    """The unit a suggestion is for, or a 404 naming ``suggestion_id``."""
    unit_id = conn.execute(select(suggestions.c.unit_id)
                           .where(suggestions.c.suggestion_id == suggestion_id)).scalar()
    if unit_id is None:
        raise NotFound("建议「%s」不存在" % suggestion_id, {"suggestion_id": ["没有这条建议"]})
    return unit_id


def list_suggestions(conn, unit_id: str, year: int | None, status: str | None) -> list[dict]:
    units = _units(conn, unit_id)
    q = select(suggestions).where(suggestions.c.unit_id.in_(list(units)))
    if year:
        q = q.where(suggestions.c.year == year)
    if status:
        q = q.where(suggestions.c.status == status)
    rows = conn.execute(q.order_by(suggestions.c.submitted_on.desc(),
                                   suggestions.c.suggestion_id)).mappings().all()
    return [dict(r, unit_name=units[r["unit_id"]]["name"]) for r in rows]


def get_suggestion(conn, suggestion_id: str) -> dict | None:
    row = conn.execute(select(suggestions, unit_directory.c.name.label("unit_name")).select_from(
        suggestions.outerjoin(unit_directory, unit_directory.c.unit_id == suggestions.c.unit_id))
        .where(suggestions.c.suggestion_id == suggestion_id)).mappings().first()
    return dict(row) if row else None


def suggestion_summary(conn, unit_id: str, year: int) -> dict:
    """Per unit of the subtree: submitted, accepted (受理 or later), answered, adopted."""
    units = _units(conn, unit_id)
    rows = conn.execute(select(suggestions.c.unit_id, suggestions.c.status, suggestions.c.outcome)
                        .where(suggestions.c.unit_id.in_(list(units)),
                               suggestions.c.year == year)).all()
    per = {u: {"unit_id": u, "name": units[u]["name"], "submitted": 0, "accepted": 0,
               "answered": 0, "adopted": 0} for u in units}
    for unit, status, outcome in rows:
        c = per[unit]
        c["submitted"] += 1
        if status != "submitted":
            c["accepted"] += 1
        if status == "answered":
            c["answered"] += 1
            if outcome in ADOPTED_OUTCOMES:
                c["adopted"] += 1
    out = [dict(c, adoption_rate=adoption_rate(c["adopted"], c["answered"]))
           for c in per.values() if c["submitted"]]
    out.sort(key=lambda c: (-c["submitted"], c["name"]))
    total = {k: sum(c[k] for c in out) for k in ("submitted", "accepted", "answered", "adopted")}
    total["adoption_rate"] = adoption_rate(total["adopted"], total["answered"])
    return {"unit_id": unit_id, "year": year, "units": out, "total": total}


# -- 典型案例通报 ---------------------------------------------------------------------------------
def require_bulletin_scope(conn, bulletin_id: str) -> str:
    """The root of the subtree a bulletin went to, or a 404 naming ``bulletin_id``."""
    unit_id = conn.execute(select(bulletins.c.scope_unit_id)
                           .where(bulletins.c.bulletin_id == bulletin_id)).scalar()
    if unit_id is None:
        raise NotFound("通报「%s」不存在" % bulletin_id, {"bulletin_id": ["没有这份通报"]})
    return unit_id


def list_bulletins(conn, unit_id: str, today) -> list[dict]:
    """The bulletins any unit of the subtree received, newest first, each with the subtree's
    recipients, how many studied it and how many are past the study deadline."""
    units = _units(conn, unit_id)
    rows = conn.execute(select(bulletin_receipts.c.bulletin_id, bulletin_receipts.c.studied_on)
                        .where(bulletin_receipts.c.unit_id.in_(list(units)))).all()
    counts: dict[str, dict] = {}
    for bulletin_id, studied_on in rows:
        c = counts.setdefault(bulletin_id, {"mine": 0, "studied": 0})
        c["mine"] += 1
        c["studied"] += 1 if studied_on else 0
    if not counts:
        return []
    out = []
    for b in conn.execute(select(bulletins).where(bulletins.c.bulletin_id.in_(list(counts)))
                          .order_by(bulletins.c.issued_on.desc(), bulletins.c.bulletin_id)).mappings():
        c = counts[b["bulletin_id"]]
        overdue = c["mine"] - c["studied"] if study_state(None, b["due_on"], today) == "overdue" else 0
        out.append(dict(b, recipients_here=c["mine"], studied=c["studied"], overdue=overdue,
                        rate=round(c["studied"] / c["mine"], 4)))
    return out


def bulletin_receipts_of(conn, bulletin_id: str, unit_id: str, today) -> dict | None:
    """One bulletin and the receipts of its recipients in the subtree of ``unit_id``: who has
    studied it (when, how many, what they drew from it) and who has not (overdue or pending)."""
    b = conn.execute(select(bulletins).where(bulletins.c.bulletin_id == bulletin_id)).mappings().first()
    if b is None:
        return None
    units = _units(conn, unit_id)
    rows = conn.execute(select(bulletin_receipts, unit_directory.c.name).select_from(
        bulletin_receipts.outerjoin(unit_directory, unit_directory.c.unit_id == bulletin_receipts.c.unit_id))
        .where(bulletin_receipts.c.bulletin_id == bulletin_id,
               bulletin_receipts.c.unit_id.in_(list(units)))
        .order_by(bulletin_receipts.c.unit_id)).mappings().all()
    studied = [dict(r, state="studied") for r in rows if r["studied_on"]]
    waiting = [{"unit_id": r["unit_id"], "name": r["name"], "state": study_state(None, b["due_on"], today)}
               for r in rows if not r["studied_on"]]
    return {"bulletin": dict(b), "recipients": len(rows), "studied": studied, "not_studied": waiting,
            "rate": round(len(studied) / len(rows), 4) if rows else 0.0}
