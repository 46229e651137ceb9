"""清廉机关实践: the commands and queries of 我为清廉机关建设献一策, 集中廉政承诺 and
典型案例通报 (registered on the education ``app``; imported at the end of
``application.py``). The rules are the domain's (``Suggestion``, ``CaseBulletin``,
``CaseStudyReceipt``: a proposer of the unit, a scope below the issuer, a case on offer,
taken ids); here: who may, which unit, the facts loaded through ``uow.education``, and
the read side in ``practices.py``.

* 献一策: a unit-admin (or node-admin) records a member's suggestion for the member's
  unit (the member picked from the unit's people); the unit's admins 受理 it (who handles
  it), note its 办理 and 答复 the proposer with whether it was 采纳. ``suggestion_summary``
  counts, per unit of a subtree and year, submitted / accepted / answered / adopted.
* 典型案例通报: a writer or inspector circulates a typical case (typed, or one of the cases
  on offer from 案例联编) to every active unit of a subtree; each recipient records that it
  studied it (回执: when, headcount, 举一反三); ``case_bulletin_receipts`` lists who has
  studied it and who has not (past the study deadline: 逾期未学).
"""
from __future__ import annotations

from services.education import practices as px
from services.education import queries as q
from services.education import schemas as s
from services.education.application import app, runtime_query, today_of
from services.education.domain import CaseBulletin, CaseStudyReceipt, Suggestion
from shared.app import new_id
from shared.auth import ANY_ROLE, INSPECTOR, WRITERS
from shared.errors import NotFound


# -- 献一策 ---------------------------------------------------------------------------------------
def _suggestion_unit(conn, data):
    return px.require_suggestion_unit(conn, data["suggestion_id"])


@app.command("submit_suggestion", s.SubmitSuggestion, roles=WRITERS, scope="unit_id", status=201)
def submit_suggestion(uow, d):
    """A member's suggestion (献一策) for their own unit."""
    uow.education.unit(d["unit_id"])
    suggestion_id = new_id(d["suggestion_id"])
    sg = Suggestion.submit(suggestion_id, d["unit_id"], d["proposer_id"], d["title"], d["content"],
                           today_of(uow.rt), proposer_unit=uow.education.member_unit(d["proposer_id"]),
                           taken=uow.exists(Suggestion, suggestion_id))
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
    q.require_unit(conn, d["unit_id"])
    return {"suggestions": px.list_suggestions(conn, d["unit_id"], d["year"], d["status"])}


@app.query("get_suggestion", s.SuggestionRef, roles=ANY_ROLE, scope=_suggestion_unit)
def get_suggestion(conn, d, actor):
    return px.get_suggestion(conn, d["suggestion_id"])


@runtime_query("suggestion_summary", s.SuggestionSummary, scope="unit_id")
def suggestion_summary(conn, d, actor, rt):
    q.require_unit(conn, d["unit_id"])
    return px.suggestion_summary(conn, d["unit_id"], d["year"] or today_of(rt).year)


# -- 典型案例通报 ---------------------------------------------------------------------------------
def _bulletin_scope(conn, data):
    return px.require_bulletin_scope(conn, data["bulletin_id"])


@app.command("issue_case_bulletin", s.IssueCaseBulletin, roles=WRITERS + (INSPECTOR,),
             scope="scope_unit_id", status=201)
def issue_case_bulletin(uow, d):
    """典型案例通报: a typical case (typed, or one of the cases on offer) to every active unit
    of a subtree (the issuer itself excepted), each of which then owes a study receipt."""
    ed = uow.education
    issuer = ed.unit(d["issuer_unit_id"], "issuer_unit_id")
    scope = ed.unit(d["scope_unit_id"], "scope_unit_id")
    bulletin_id = new_id(d["bulletin_id"])
    b = CaseBulletin.issue(bulletin_id, d["issuer_unit_id"], d["scope_unit_id"], d["title"], d["summary"],
                           d["requirements"], ed.active_subtree_ids(d["scope_unit_id"]), today_of(uow.rt),
                           d["due_on"], d["case_ref"], issuer_path=issuer["path"] or "",
                           scope_path=scope["path"],
                           case=ed.case_on_offer(d["case_ref"]) if d["case_ref"] else None,
                           taken=uow.exists(CaseBulletin, bulletin_id))
    uow.save(b)
    return {"bulletin_id": bulletin_id, "recipients": len(b.recipients)}


@app.command("record_case_study", s.RecordCaseStudy, roles=WRITERS, scope="unit_id", status=201)
def record_case_study(uow, d):
    """A recipient unit's receipt: it studied the case (when, how many, 举一反三)."""
    if not uow.exists(CaseBulletin, d["bulletin_id"]):
        raise NotFound("通报「%s」不存在" % d["bulletin_id"], {"bulletin_id": ["没有这份通报"]})
    bulletin = uow.get(CaseBulletin, d["bulletin_id"])
    taken = uow.exists(CaseStudyReceipt, CaseStudyReceipt.receipt_id(bulletin.id, d["unit_id"]))
    r = CaseStudyReceipt.record(bulletin, d["unit_id"], d["studied_on"], today_of(uow.rt),
                                d["headcount"], d["note"], uow.actor.user_id, taken=taken)
    uow.save(r)
    return {"bulletin_id": bulletin.id, "unit_id": d["unit_id"], "studied_on": r.studied_on}


@runtime_query("list_case_bulletins", s.BulletinsOfUnit, scope="unit_id")
def list_case_bulletins(conn, d, actor, rt):
    q.require_unit(conn, d["unit_id"])
    return {"bulletins": px.list_bulletins(conn, d["unit_id"], today_of(rt))}


@runtime_query("case_bulletin_receipts", s.BulletinReceipts, scope="unit_id")
def case_bulletin_receipts(conn, d, actor, rt):
    q.require_unit(conn, d["unit_id"])
    out = px.bulletin_receipts_of(conn, d["bulletin_id"], d["unit_id"], today_of(rt))
    if out is None:
        raise NotFound("通报「%s」不存在" % d["bulletin_id"], {"bulletin_id": ["没有这份通报"]})
    return out


@app.query("bulletin_cases", s.Nothing, roles=ANY_ROLE)
def bulletin_cases(conn, d, actor):
    """The typical cases on offer (案例联编, the city's), for a bulletin's case picker."""
    return {"cases": q.bulletin_cases(conn)}
