"""纪检委员 roster read side (units service): the training records of the 纪检委员 (选优配强),
and a subtree's roster - each unit's 纪检委员 (兼职 or 专职, from the people register), their
trainings and hours in a year, and the units that have none.

The table shares the units service's ``metadata``; the handler inserts by key only."""
from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table, select

from services.units.domain import discipline_duty, needs_discipline_member
from services.units.projections import metadata, people
from services.units.queries import subtree
from shared.projections import Projection, on

trainings = Table(
    "discipline_trainings", metadata,
    Column("training_id", String(160), primary_key=True),
    Column("person_id", String(100), nullable=False, index=True),
    Column("unit_id", String(100), nullable=False),
    Column("course", String(200), nullable=False),
    Column("trained_on", String(10), nullable=False),
    Column("year", Integer, nullable=False),
    Column("hours", Float, nullable=False),
    Column("organiser", String(200)),
)


class Trainings(Projection):
    name = "units_discipline_trainings"
    tables = (trainings,)

    @on("DisciplineTraining.Recorded")
    def recorded(self, w, e):
        p = e.payload
        w.insert(trainings, training_id=p["training_id"], person_id=p["person_id"], unit_id=p["unit_id"],
                 course=p["course"], trained_on=p["trained_on"], year=int(p["trained_on"][:4]), hours=p["hours"],
                 organiser=p.get("organiser"))


TRAININGS = Trainings()


def roster(conn, unit_id: str, year: int) -> dict:
    """Per active unit of the subtree (root included): its 纪检委员 with 兼职/专职, every
    training (newest first) and the year's trainings and hours; the units that should have
    a 纪检委员 (``needs_discipline_member``) and have none are listed in ``without``."""
    units = subtree(conn, unit_id)  # active units only, in path order
    ids = [u["unit_id"] for u in units]
    members = [dict(r) for r in conn.execute(
        select(people.c.person_id, people.c.name, people.c.unit_id, people.c.post, people.c.roles,
               people.c.part_time_roles).where(people.c.unit_id.in_(ids))
        .order_by(people.c.name, people.c.person_id)).mappings()
        if "discipline_member" in (r["roles"] or ())]
    done: dict[str, list] = {}
    for t in conn.execute(select(trainings).where(trainings.c.person_id.in_([m["person_id"] for m in members]))
                          .order_by(trainings.c.trained_on.desc(), trainings.c.course)).mappings():
        done.setdefault(t["person_id"], []).append(
            {k: t[k] for k in ("training_id", "course", "trained_on", "hours", "organiser")})
    per = {u["unit_id"]: [] for u in units}
    for m in members:
        records = done.get(m["person_id"], [])
        this_year = [t for t in records if t["trained_on"].startswith("%04d-" % year)]
        per[m["unit_id"]].append({
            "person_id": m["person_id"], "name": m["name"], "post": m["post"],
            "duty": discipline_duty(m["part_time_roles"]), "trainings": records,
            "trainings_in_year": len(this_year), "hours_in_year": round(sum(t["hours"] for t in this_year), 1),
            "last_trained_on": records[0]["trained_on"] if records else None})
    rows = [{"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"], "members": per[u["unit_id"]]}
            for u in units if per[u["unit_id"]]]
    without = [{"unit_id": u["unit_id"], "name": u["name"], "kind": u["kind"]}
               for u in units if not per[u["unit_id"]] and needs_discipline_member(u)]
    flat = [m for r in rows for m in r["members"]]
    return {"unit_id": unit_id, "year": year, "units": rows, "without": without,
            "members": len(flat), "part_time": sum(1 for m in flat if m["duty"] == "part_time"),
            "full_time": sum(1 for m in flat if m["duty"] == "full_time"),
            "trained_in_year": sum(1 for m in flat if m["trainings_in_year"]),
            "hours_in_year": round(sum(m["hours_in_year"] for m in flat), 1)}
