"""What the exchange does with this node's education service's events (issue 10 #1, #2).

* ``StudySession.SharedWithNodes`` - a session the node (the city) organises for other
  nodes (上下联学 for its districts): it becomes a 活动联办 record of this node,
  ``<node>/<slug>`` (the slug the education service chose, so the attendance that comes
  back names its session), shared ``named`` with those nodes, its theme the session
  kind's name. On each of them the education service offers it to units to join
  (``JointActivity.Published``), with nobody registering it again.
* ``SessionParticipation.Attended`` / ``.Corrected`` - a unit of this node attended (or
  no longer) a session that is an exchange activity: this node's ``Attendance`` for the
  activity is recorded or corrected with that unit and its headcount, and travels back
  to the organiser with the record's audience. A participation the education service
  recorded because it followed an attendance entered here (its causation is an event of
  this log) is not summed up again, and neither is one that changes nothing: the two
  services never echo each other, whatever order their queues are handled in.
"""
from __future__ import annotations

import logging

from services.exchange.application import app, fed, save_and_share, sub_sharing, unit_named
from services.exchange.domain import Attendance, JointActivity, derived_id, record_id

log = logging.getLogger(__name__)


def share_education_session(uow, event) -> str | None:
    p = event.payload
    f = fed(uow)
    aid = record_id(f.node_id, p["slug"])
    if uow.exists(JointActivity, aid):
        return None  # a repeat
    trusted = {n for n in p["nodes"] if f.registry.get(n) is not None}
    dropped = sorted(set(p["nodes"]) - trusted - {f.node_id})
    if dropped:
        log.warning("exchange: session %s shared with nodes this node does not trust (%s): left out",
                    p["session_id"], ", ".join(dropped))
    activity = JointActivity.for_session(aid, p, f.node_id, trusted,
                                         app.bind_ports(uow).exchange.unit(p["organiser_unit_id"]))
    if activity is None:
        return None
    save_and_share(uow, activity)
    return aid


def attendance_from_education(uow, event) -> str | None:
    p = event.payload
    ex = app.bind_ports(uow).exchange
    cause = (event.metadata or {}).get("causation_id")
    if cause and ex.event_recorded(cause):
        return None  # education following this node's attendance recorded here: nothing new
    aid = p.get("session_key") or ""
    row = ex.record(aid)
    if not Attendance.takes_participation(row):
        return None  # not a joint activity this node can see
    attended = True if event.event_type.endswith(".Attended") else bool(p["attended"])
    f = fed(uow)
    att_id = derived_id(f.node_id, "attendance", aid)
    existing = ex.sub(att_id)
    units = existing["content"].get("units", []) if existing else []
    new_units = Attendance.units_with(units, p["unit_id"], attended,
                                      unit_named(uow, p["unit_id"]) if attended else None,
                                      p["headcount"] if attended else 0)
    if existing is not None and sorted(units, key=lambda u: u["unit_id"]) == new_units:
        return None  # already so (entered in the exchange itself)
    note = "由教育服务的参加登记汇总"
    if uow.exists(Attendance, att_id):
        attendance = uow.get(Attendance, att_id)
        attendance.correct(new_units, note)
    else:
        if not new_units:
            return None
        sharing, recipients = sub_sharing(uow, row)
        attendance = Attendance.record(att_id, sharing, recipients, aid, new_units, note)
    save_and_share(uow, attendance)
    return att_id
