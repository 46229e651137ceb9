"""清廉机关实践: the commands and queries of 我为清廉机关建设献一策, 集中廉政承诺 and
典型案例通报 (registered on the education ``app``; imported at the end of
``application.py``). The rules are the domain's (``Suggestion``, ...); here: who may,
which unit, and the read side in ``practices.py``.

* 献一策: a unit-admin (or node-admin) records a member's suggestion for the member's
  unit (the member picked from the unit's people); the unit's admins 受理 it (who handles
  it), note its 办理 and 答复 the proposer with whether it was 采纳. ``suggestion_summary``
  counts, per unit of a subtree and year, submitted / accepted / answered / adopted.
"""
from __future__ import annotations

from sqlalchemy import select

from services.education import practices as px
from services.education import projections as pr
from services.education import schemas as s
from services.education.application import _require_unit, app, runtime_query, today_of
from services.education.domain import Suggestion
from shared.app import new_id
from shared.auth import ANY_ROLE, WRITERS
from shared.errors import BadInput, Conflict, NotFound


# -- 献一策 ---------------------------------------------------------------------------------------
def _suggestion_unit(conn, data):
    unit_id = conn.execute(select(px.suggestions.c.unit_id).where(
        px.suggestions.c.suggestion_id == data["suggestion_id"])).scalar()
    if unit_id is None:
        raise NotFound("建议「%s」不存在" % data["suggestion_id"], {"suggestion_id": ["没有这条建议"]})
    return unit_id


@app.command("submit_suggestion", s.SubmitSuggestion, roles=WRITERS, scope="unit_id", status=201)
def submit_suggestion(uow, d):
    """A member's suggestion (献一策) for their own unit."""
    conn = uow.conn
    _require_unit(conn, d["unit_id"])
    member = conn.execute(select(pr.members.c.unit_id).where(
        pr.members.c.person_id == d["proposer_id"])).scalar()
    if member is None:
        raise NotFound("没有这名党员干部", {"proposer_id": ["没有这个人"]})
    if member != d["unit_id"]:
        raise BadInput("提建议的人不是该单位的党员干部", {"proposer_id": ["不在该单位"]})
    suggestion_id = new_id(d["suggestion_id"])
    if uow.exists(Suggestion, suggestion_id):
        raise Conflict("建议「%s」已存在" % suggestion_id, {"suggestion_id": ["已被占用"]})
    sg = Suggestion.submit(suggestion_id, d["unit_id"], d["proposer_id"], d["title"], d["content"],
                           today_of(uow.rt))
    uow.save(sg)
    return {"suggestion_id": suggestion_id, "status": sg.status}


@app.command("accept_suggestion", s.AcceptSuggestion, roles=WRITERS, scope=_suggestion_unit)
def accept_suggestion(uow, d):
    """受理: the unit takes the suggestion up, naming who handles it."""
    sg = uow.get(Suggestion, d["suggestion_id"])
    sg.accept(d["handler"], today_of(uow.rt), uow.actor.user_id)
    uow.save(sg)
    return {"suggestion_id": sg.id, "status": sg.status}


@app.command("progress_suggestion", s.ProgressSuggestion, roles=WRITERS, scope=_suggestion_unit)
def progress_suggestion(uow, d):
    """办理: a note on how it is being handled."""
    sg = uow.get(Suggestion, d["suggestion_id"])
    sg.progress(d["note"], today_of(uow.rt), uow.actor.user_id)
    uow.save(sg)
    return {"suggestion_id": sg.id, "status": sg.status}


@app.command("answer_suggestion", s.AnswerSuggestion, roles=WRITERS, scope=_suggestion_unit)
def answer_suggestion(uow, d):
    """答复 the proposer, with whether the suggestion was 采纳 (in full or in part)."""
    sg = uow.get(Suggestion, d["suggestion_id"])
    sg.answer(d["reply"], d["outcome"], today_of(uow.rt), uow.actor.user_id)
    uow.save(sg)
    return {"suggestion_id": sg.id, "status": sg.status, "outcome": sg.outcome}


@app.query("list_suggestions", s.ListSuggestions, roles=ANY_ROLE, scope="unit_id")
def list_suggestions(conn, d, actor):
    _require_unit(conn, d["unit_id"])
    return {"suggestions": px.list_suggestions(conn, d["unit_id"], d["year"], d["status"])}


@app.query("get_suggestion", s.SuggestionRef, roles=ANY_ROLE, scope=_suggestion_unit)
def get_suggestion(conn, d, actor):
    return px.get_suggestion(conn, d["suggestion_id"])


@runtime_query("suggestion_summary", s.SuggestionSummary, scope="unit_id")
def suggestion_summary(conn, d, actor, rt):
    _require_unit(conn, d["unit_id"])
    return px.suggestion_summary(conn, d["unit_id"], d["year"] or today_of(rt).year)
