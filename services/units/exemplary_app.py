"""模范科室评选 (issue 10 #24): the commands and queries (registered on the units ``app``;
imported at the end of ``application.py``). The rules are ``ExemplaryRound``'s.

Why the units service: the nominees are units of the register (内设科室、二级单位、窗口单位 by
their kind) and a round's scope is the organising unit's subtree, both kept here.

* ``open_exemplary_round`` (organising unit, year: one round per unit and year), ``nominate``,
  ``score_nominee`` (a nominee scores another, never itself; the scorer's unit-admin or a
  node-admin), ``close_exemplary_round`` (ranking and exemplars recorded; final).
* ``list_exemplary_rounds``, ``get_exemplary_round``.
"""
from __future__ import annotations

from sqlalchemy import select

from services.units import exemplary as ex
from services.units import schemas as s
from services.units.application import _require_unit, app
from services.units.domain import ExemplaryRound
from services.units.projections import unit_path
from shared.auth import ANY_ROLE, WRITERS
from shared.errors import Conflict, NotFound


def _round_unit(conn, data) -> str:
    unit_id = conn.execute(select(ex.rounds.c.unit_id).where(ex.rounds.c.round_id == data["round_id"])).scalar()
    if unit_id is None:
        raise NotFound("没有这一轮评选", {"round_id": ["不存在"]})
    return unit_id


@app.command("open_exemplary_round", s.OpenExemplaryRound, roles=WRITERS, scope="unit_id", status=201)
def open_exemplary_round(uow, d):
    """模范科室评选: a unit opens the year's round (one per unit and year)."""
    unit = _require_unit(uow.conn, d["unit_id"])
    round_id = ExemplaryRound.round_id(d["unit_id"], d["year"])
    if uow.exists(ExemplaryRound, round_id):
        raise Conflict("%s %d 年度的模范科室评选已开启" % (unit["name"], d["year"]), {"year": ["本年度已有评选"]})
    r = ExemplaryRound.open(d["unit_id"], d["year"], d["title"], d["exemplars"])
    uow.save(r)
    return {"round_id": r.id}


@app.command("nominate_exemplary", s.Nominate, roles=WRITERS, scope=_round_unit)
def nominate_exemplary(uow, d):
    """A section, secondary unit or window below the organising unit nominated."""
    r = uow.get(ExemplaryRound, d["round_id"])
    nominee = _require_unit(uow.conn, d["nominee_unit_id"])
    path, mine = unit_path(uow.conn, r.unit_id), unit_path(uow.conn, nominee["unit_id"])
    r.nominate(nominee, in_scope=bool(path and mine and mine.startswith(path)))
    uow.save(r)
    return {"round_id": r.id, "nominees": len(r.nominees)}


@app.command("score_exemplary", s.ScoreNominee, roles=WRITERS, scope="scorer_unit_id")
def score_exemplary(uow, d):
    """互比互查: a nominee's scores of another nominee on 讲政治、守纪律、负责任、有效率."""
    if not uow.exists(ExemplaryRound, d["round_id"]):
        raise NotFound("没有这一轮评选", {"round_id": ["不存在"]})
    r = uow.get(ExemplaryRound, d["round_id"])
    r.score(d["scorer_unit_id"], d["nominee_unit_id"], d["scores"])
    uow.save(r)
    return {"round_id": r.id, "scores": len(r.scores)}


@app.command("close_exemplary_round", s.ExemplaryRoundRef, roles=WRITERS, scope=_round_unit)
def close_exemplary_round(uow, d):
    """The result: ranking on the four criteria and the exemplars selected. Final."""
    r = uow.get(ExemplaryRound, d["round_id"])
    selected = r.close()
    uow.save(r)
    return {"round_id": r.id, "selected": selected}


@app.query("list_exemplary_rounds", s.ExemplaryRounds, roles=ANY_ROLE, scope="unit_id")
def list_exemplary_rounds(conn, d, actor):
    _require_unit(conn, d["unit_id"])
    return {"rounds": ex.list_rounds(conn, d["unit_id"])}


@app.query("get_exemplary_round", s.ExemplaryRoundRef, roles=ANY_ROLE, scope=_round_unit)
def get_exemplary_round(conn, d, actor):
    return ex.get_round(conn, d["round_id"])
