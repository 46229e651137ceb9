"""集中廉政承诺 read side (units service): the pledges, and a subtree's coverage - every
party secretary and 纪检委员 of its units, who pledged in a year and who has not.

The table shares the units service's ``metadata``; the handler inserts by key only."""
from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text, select

from services.units.domain import PLEDGE_ROLES
from services.units.projections import metadata, people
from services.units.queries import subtree
from shared.db import JSONText
from shared.errors import NotFound
from shared.projections import Projection, on

pledges = Table(
    "integrity_pledges", metadata,
    Column("pledge_id", String(120), primary_key=True),
    Column("unit_id", String(100), nullable=False, index=True),
    Column("person_id", String(100), nullable=False),
    Column("role", String(30), nullable=False),
    Column("year", Integer, nullable=False, index=True),
    Column("pledged_on", String(10), nullable=False),
    Column("text", Text, nullable=False),
    Column("witnesses", JSONText, nullable=False),
    Column("occasion", String(200)),
)


class Pledges(Projection):
    name = "units_pledges"
    tables = (pledges,)

    @on("IntegrityPledge.Made")
    def made(self, w, e):
        p = e.payload
        w.insert(pledges, pledge_id=p["pledge_id"], unit_id=p["unit_id"], person_id=p["person_id"],
                 role=p["role"], year=p["year"], pledged_on=p["pledged_on"], text=p["text"],
                 witnesses=p["witnesses"], occasion=p.get("occasion"))


PLEDGES = Pledges()


def _names(conn, person_ids) -> dict[str, str]:
    rows = conn.execute(select(people.c.person_id, people.c.name)
                        .where(people.c.person_id.in_(list(person_ids)))).all()
    return dict(rows)


def list_pledges(conn, unit_id: str, year: int) -> list[dict]:
    units = {u["unit_id"]: u for u in subtree(conn, unit_id, include_inactive=True)}
    rows = conn.execute(select(pledges).where(pledges.c.unit_id.in_(list(units)),
                                              pledges.c.year == year)
                        .order_by(pledges.c.pledged_on, pledges.c.pledge_id)).mappings().all()
    names = _names(conn, {r["person_id"] for r in rows})
    return [dict(r, unit_name=units[r["unit_id"]]["name"], name=names.get(r["person_id"]))
            for r in rows]


def require_pledge_unit(conn, pledge_id: str) -> str:
    """The unit of a pledge, or a 404 naming ``pledge_id``."""
    unit_id = conn.execute(select(pledges.c.unit_id).where(pledges.c.pledge_id == pledge_id)).scalar()
    if unit_id is None:
        raise NotFound("没有这份承诺", {"pledge_id": ["不存在"]})
    return unit_id


def get_pledge(conn, pledge_id: str) -> dict | None:
    row = conn.execute(select(pledges).where(pledges.c.pledge_id == pledge_id)).mappings().first()
    if row is None:
        return None
    return dict(row, name=_names(conn, [row["person_id"]]).get(row["person_id"]))


def pledge_coverage(conn, unit_id: str, year: int) -> dict:
    """Per active unit of the subtree: its party secretaries and 纪检委员 (a person holding
    both counts once per role), who pledged in ``year`` and who has not; units with no
    such person are listed apart (nobody to pledge). Coverage = pledged / holders."""
    units = subtree(conn, unit_id)  # active units only
    ids = [u["unit_id"] for u in units]
    holders = conn.execute(select(people.c.person_id, people.c.name, people.c.unit_id, people.c.roles)
                           .where(people.c.unit_id.in_(ids))).mappings().all()
    made = {(r["person_id"], r["role"]) for r in conn.execute(
        select(pledges.c.person_id, pledges.c.role).where(pledges.c.unit_id.in_(ids),
                                                          pledges.c.year == year)).mappings()}
    per = {u["unit_id"]: {"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"],
                          "pledged": [], "missing": []} for u in units}
    for h in holders:
        for role in PLEDGE_ROLES:
            if role in (h["roles"] or ()):
                entry = {"person_id": h["person_id"], "name": h["name"], "role": role}
                per[h["unit_id"]]["pledged" if (h["person_id"], role) in made else "missing"].append(entry)
    rows, without = [], []
    for u in per.values():
        total = len(u["pledged"]) + len(u["missing"])
        if not total:
            without.append({"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"]})
            continue
        rows.append(dict(u, holders=total, coverage=round(len(u["pledged"]) / total, 4),
                         complete=not u["missing"]))
    holders_total = sum(r["holders"] for r in rows)
    pledged_total = sum(len(r["pledged"]) for r in rows)
    return {"unit_id": unit_id, "year": year, "units": rows, "without_holders": without,
            "holders": holders_total, "pledged": pledged_total,
            "coverage": round(pledged_total / holders_total, 4) if holders_total else None,
            "units_complete": sum(1 for r in rows if r["complete"])}
