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

from services.units import exemplary as ex
from services.units import queries as q
from services.units import schemas as s
from services.units.application import app
from services.units.domain import ExemplaryRound
from shared.auth import ANY_ROLE, WRITERS
from shared.errors import NotFound


def _round_unit(conn, data) -> str:
    return ex.require_round_unit(conn, data["round_id"])


@app.command("open_exemplary_round", s.OpenExemplaryRound, roles=WRITERS, scope="unit_id", status=201)
def open_exemplary_round(uow, d):
    """模范科室评选: a unit opens the year's round (one per unit and year)."""
    unit = uow.units.require(d["unit_id"])
    round_id = ExemplaryRound.round_id(d["unit_id"], d["year"])
    r = ExemplaryRound.open(d["unit_id"], d["year"], d["title"], d["exemplars"], unit_name=unit["name"],
                            taken=uow.exists(ExemplaryRound, round_id))
    uow.save(r)
    return {"round_id": r.id}


@app.command("nominate_exemplary", s.Nominate, roles=WRITERS, scope=_round_unit)
def nominate_exemplary(uow, d):
    """A section, secondary unit or window below the organising unit nominated."""
    r = uow.get(ExemplaryRound, d["round_id"])
    nominee = uow.units.require(d["nominee_unit_id"])
    r.nominate(nominee, organiser_path=uow.units.path(r.unit_id))
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
    q.require_unit(conn, d["unit_id"])
    return {"rounds": ex.list_rounds(conn, d["unit_id"])}


@app.query("get_exemplary_round", s.ExemplaryRoundRef, roles=ANY_ROLE, scope=_round_unit)
def get_exemplary_round(conn, d, actor):
    return ex.get_round(conn, d["round_id"])
