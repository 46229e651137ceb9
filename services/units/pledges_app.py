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

from sqlalchemy import select

from services.units import pledges as pl
from services.units import schemas as s
from services.units.application import _require_unit, app
from services.units.domain import IntegrityPledge
from services.units.projections import people
from shared import config
from shared.auth import ANY_ROLE, WRITERS
from shared.errors import Conflict, NotFound


def _person(conn, data) -> dict:
    row = conn.execute(select(people).where(people.c.person_id == data["person_id"])).mappings().first()
    if row is None:
        raise NotFound("人员「%s」不存在" % data["person_id"], {"person_id": ["没有这个人"]})
    return dict(row)


def _person_unit(conn, data) -> str:
    return _person(conn, data)["unit_id"]


def _pledge_unit(conn, data) -> str:
    unit_id = conn.execute(select(pl.pledges.c.unit_id)
                           .where(pl.pledges.c.pledge_id == data["pledge_id"])).scalar()
    if unit_id is None:
        raise NotFound("没有这份承诺", {"pledge_id": ["不存在"]})
    return unit_id


@app.command("record_pledge", s.RecordPledge, roles=WRITERS, scope=_person_unit, status=201)
def record_pledge(uow, d):
    """A party secretary's or 纪检委员's 集中廉政承诺 for the year of ``pledged_on``."""
    person = _person(uow.conn, d)
    pledge_id = IntegrityPledge.pledge_id(d["pledged_on"].year, person["person_id"])
    if uow.exists(IntegrityPledge, pledge_id):
        raise Conflict("%s已作出 %d 年度的廉政承诺" % (person["name"], d["pledged_on"].year),
                       {"person_id": ["本年度已承诺"]})
    today = uow.now.astimezone(ZoneInfo(config.timezone_name())).date()
    p = IntegrityPledge.make(person, d["role"], d["pledged_on"], today, d["text"], d["witnesses"],
                             d["occasion"])
    uow.save(p)
    return {"pledge_id": p.id, "year": d["pledged_on"].year}


@app.query("list_pledges", s.PledgesOfYear, roles=ANY_ROLE, scope="unit_id")
def list_pledges(conn, d, actor):
    _require_unit(conn, d["unit_id"])
    return {"pledges": pl.list_pledges(conn, d["unit_id"], d["year"])}


@app.query("get_pledge", s.PledgeRef, roles=ANY_ROLE, scope=_pledge_unit)
def get_pledge(conn, d, actor):
    return pl.get_pledge(conn, d["pledge_id"])


@app.query("pledge_coverage", s.PledgesOfYear, roles=ANY_ROLE, scope="unit_id")
def pledge_coverage(conn, d, actor):
    _require_unit(conn, d["unit_id"])
    return pl.pledge_coverage(conn, d["unit_id"], d["year"])
