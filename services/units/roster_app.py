"""纪检委员 roster (issue 10 #25): the commands and queries (registered on the units ``app``;
imported at the end of ``application.py``). The rules are ``DisciplineTraining``'s.

Why the units service: who is a 纪检委员 of which unit, and whether 兼职 (身兼数职) or 专职,
is already the people register's (``assign_role`` with ``part_time``); their training
records are about the same private people, so they stay beside them on the node.

* ``record_discipline_training``: a unit-admin (scope: the person's unit) or node-admin
  records a training a 纪检委员 attended: course, date (not after today), hours.
* ``discipline_roster``: per unit of a subtree, its 纪检委员 with 兼职/专职, their trainings
  and the year's hours; the units without one.
"""
from __future__ import annotations

from services.units import queries as q
from services.units import schemas as s
from services.units.application import app
from services.units.domain import DisciplineTraining
from services.units.pledges_app import _person_unit, today
from services.units.roster import roster
from shared.auth import ANY_ROLE, WRITERS


@app.command("record_discipline_training", s.RecordDisciplineTraining, roles=WRITERS, scope=_person_unit,
             status=201)
def record_discipline_training(uow, d):
    """选优配强: a training a 纪检委员 attended (the course, its date and hours)."""
    person = uow.units.person(d["person_id"])
    training_id = DisciplineTraining.training_id(person["person_id"], d["trained_on"].isoformat(), d["course"])
    t = DisciplineTraining.record(person, d["course"], d["trained_on"], today(uow), d["hours"], d["organiser"],
                                  taken=uow.exists(DisciplineTraining, training_id))
    uow.save(t)
    return {"training_id": t.id, "person_id": person["person_id"]}


@app.query("discipline_roster", s.DisciplineRoster, roles=ANY_ROLE, scope="unit_id")
def discipline_roster(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return roster(conn, d["unit_id"], d["year"])
