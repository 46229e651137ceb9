"""集中廉政承诺: the commands and queries of the pledges (registered on the units ``app``;
imported at the end of ``application.py``). The rules are ``IntegrityPledge``'s.

* A unit-admin (scope: the person's unit) or node-admin records that a party secretary or
  纪检委员 of the register made the year's pledge, with its text and the enterprise and
  resident representatives who witnessed it; one per person and year.
* ``pledge_coverage``: per unit of a subtree, its party secretaries and 纪检委员, who
  pledged in the year and who has not, and the units with nobody to pledge.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from services.units import pledges as pl
from services.units import queries as q
from services.units import schemas as s
from services.units.application import app
from services.units.domain import IntegrityPledge
from shared import config
from shared.auth import ANY_ROLE, WRITERS


def _person_unit(conn, data) -> str:
    """The scope of a command about a person: their unit (404 when there is no such person)."""
    return q.require_person(conn, data["person_id"])["unit_id"]


def _pledge_unit(conn, data) -> str:
    return pl.require_pledge_unit(conn, data["pledge_id"])


def today(uow):
    """The users' today (the runtime's clock in the node's zone): what a date may not pass."""
    return uow.now.astimezone(ZoneInfo(config.timezone_name())).date()


@app.command("record_pledge", s.RecordPledge, roles=WRITERS, scope=_person_unit, status=201)
def record_pledge(uow, d):
    """A party secretary's or 纪检委员's 集中廉政承诺 for the year of ``pledged_on``."""
    person = uow.units.person(d["person_id"])
    pledge_id = IntegrityPledge.pledge_id(d["pledged_on"].year, person["person_id"])
    p = IntegrityPledge.make(person, d["role"], d["pledged_on"], today(uow), d["text"], d["witnesses"],
                             d["occasion"], taken=uow.exists(IntegrityPledge, pledge_id))
    uow.save(p)
    return {"pledge_id": p.id, "year": d["pledged_on"].year}


@app.query("list_pledges", s.PledgesOfYear, roles=ANY_ROLE, scope="unit_id")
def list_pledges(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return {"pledges": pl.list_pledges(conn, d["unit_id"], d["year"])}


@app.query("get_pledge", s.PledgeRef, roles=ANY_ROLE, scope=_pledge_unit)
def get_pledge(conn, d, actor):
    return pl.get_pledge(conn, d["pledge_id"])


@app.query("pledge_coverage", s.PledgesOfYear, roles=ANY_ROLE, scope="unit_id")
def pledge_coverage(conn, d, actor):
    q.require_unit(conn, d["unit_id"])
    return pl.pledge_coverage(conn, d["unit_id"], d["year"])
