"""模范科室评选 read side (units service): the rounds with their nominees, 互比互查 scores and
result. One row per round (nominees and scores as JSON columns); the handlers write by key."""
from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, select

from services.units.domain import exemplary_ranking
from services.units.projections import metadata, units
from services.units.queries import subtree
from shared.db import JSONText
from shared.errors import NotFound
from shared.projections import Projection, on

rounds = Table(
    "exemplary_rounds", metadata,
    Column("round_id", String(100), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("year", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("exemplars", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("nominees", JSONText, nullable=False),
    Column("scores", JSONText, nullable=False),
    Column("ranking", JSONText),
    Column("selected", JSONText),
)


class ExemplaryRounds(Projection):
    name = "units_exemplary_rounds"
    tables = (rounds,)

    @on("ExemplaryRound.Opened")
    def opened(self, w, e):
        p = e.payload
        w.insert(rounds, round_id=p["round_id"], unit_id=p["unit_id"], year=p["year"], title=p["title"],
                 exemplars=p["exemplars"], status="open", nominees=[], scores=[])

    @on("ExemplaryRound.Nominated")
    def nominated(self, w, e):
        row = w.get(rounds, round_id=e.payload["round_id"])
        w.update(rounds, {"round_id": row["round_id"]}, nominees=[*row["nominees"], e.payload["nominee_unit_id"]])

    @on("ExemplaryRound.Scored")
    def scored(self, w, e):
        p = e.payload
        row = w.get(rounds, round_id=p["round_id"])
        w.update(rounds, {"round_id": row["round_id"]}, scores=[*row["scores"], {
            "scorer_unit_id": p["scorer_unit_id"], "nominee_unit_id": p["nominee_unit_id"], "scores": p["scores"]}])

    @on("ExemplaryRound.Closed")
    def closed(self, w, e):
        p = e.payload
        w.update(rounds, {"round_id": p["round_id"]}, status="closed", ranking=p["ranking"], selected=p["selected"])


EXEMPLARY = ExemplaryRounds()


def _names(conn, ids) -> dict[str, str]:
    return dict(conn.execute(select(units.c.unit_id, units.c.name).where(units.c.unit_id.in_(list(ids)))).all())


def require_round_unit(conn, round_id: str) -> str:
    """The organising unit of a round, or a 404 naming ``round_id``."""
    unit_id = conn.execute(select(rounds.c.unit_id).where(rounds.c.round_id == round_id)).scalar()
    if unit_id is None:
        raise NotFound("没有这一轮评选", {"round_id": ["不存在"]})
    return unit_id


def list_rounds(conn, unit_id: str) -> list[dict]:
    ids = [u["unit_id"] for u in subtree(conn, unit_id, include_inactive=True)]
    rows = conn.execute(select(rounds).where(rounds.c.unit_id.in_(ids))
                        .order_by(rounds.c.year.desc(), rounds.c.round_id)).mappings().all()
    names = _names(conn, {r["unit_id"] for r in rows})
    return [{k: r[k] for k in ("round_id", "unit_id", "year", "title", "exemplars", "status")}
            | {"unit_name": names.get(r["unit_id"]), "nominees": len(r["nominees"]),
               "scores": len(r["scores"])} for r in rows]


def get_round(conn, round_id: str) -> dict | None:
    """The round, its nominees by name, every score, the pairs still to score (each nominee
    scores every other) and the standing: live while open, the recorded result once closed."""
    r = conn.execute(select(rounds).where(rounds.c.round_id == round_id)).mappings().first()
    if r is None:
        return None
    nominees = list(r["nominees"])
    names = _names(conn, {r["unit_id"], *nominees})
    done = {(s["scorer_unit_id"], s["nominee_unit_id"]) for s in r["scores"]}
    pending = [{"scorer_unit_id": a, "scorer_name": names.get(a), "nominee_unit_id": b, "nominee_name": names.get(b)}
               for a in nominees for b in nominees if a != b and (a, b) not in done]
    ranking = r["ranking"] if r["status"] == "closed" else exemplary_ranking(nominees, r["scores"])
    selected = set(r["selected"] or ())
    return {k: r[k] for k in ("round_id", "unit_id", "year", "title", "exemplars", "status")} | {
        "unit_name": names.get(r["unit_id"]),
        "nominees": [{"unit_id": n, "name": names.get(n)} for n in nominees],
        "scores": [s | {"scorer_name": names.get(s["scorer_unit_id"]), "nominee_name": names.get(s["nominee_unit_id"])}
                   for s in r["scores"]],
        "pending": pending,
        "ranking": [x | {"name": names.get(x["unit_id"]), "selected": x["unit_id"] in selected} for x in ranking],
        "selected": [{"unit_id": u, "name": names.get(u)} for u in (r["selected"] or ())]}
