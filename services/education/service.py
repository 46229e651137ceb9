"""The education nameko service: its operations come from application.py; here only
what nameko itself must declare - the people it hears about from the units service,
and the daily routines on a timer."""
from __future__ import annotations

import logging

from nameko.events import event_handler
from nameko.exceptions import serialize
from nameko.rpc import rpc
from nameko.timer import timer

from shared.errors import BadInput, QinglianError, Unauthenticated
from shared.http import dependency_failures
from shared.auth import Actor, rpc_token
from shared.service import MirrorsUnits, NodeService, idempotent

from services.education.application import (
    ROUTINES, app, check_in_alone, record_activity_event, record_attendance_event,
    record_case_event, record_check_ins, record_person_event, record_risk_point_event,
)
from services.education.burst import CheckInBatcher

log = logging.getLogger(__name__)


@app.extension("checkin_batcher")
def _checkin_batcher(host) -> CheckInBatcher:
    """The check-in group commit (``burst.py``), running as a managed thread; commands reach
    it as ``rt.ext.checkin_batcher``."""
    rt = host.runtime
    batcher = CheckInBatcher(rt, record_check_ins, lambda item: check_in_alone(rt, item))
    host.thread("checkin-batcher", lambda: batcher.run(host.stopping))
    return batcher


class EducationService(MirrorsUnits, NodeService):
    name = "education"
    app = app
    timer_routines = ROUTINES  # what the timer runs (metered apart from users' commands)

    # requeue_on_error: a failed transaction (the store busy, the database restarting)
    # must not drop a promotion - the talk it schedules is the point of the chain
    @event_handler("units", "Person.Registered", requeue_on_error=True)
    @idempotent
    def on_person_registered(self, event, uow):
        return record_person_event(uow, event, "Registered")

    @event_handler("units", "Person.Promoted", requeue_on_error=True)
    @idempotent
    def on_person_promoted(self, event, uow):
        return record_person_event(uow, event, "Promoted")

    # one register of risk points: supervision's 廉政风险点台账 (items identified, retired)
    @event_handler("supervision", "RiskPoint.*", requeue_on_error=True)
    @idempotent
    def on_risk_point(self, event, uow):
        return record_risk_point_event(uow, event)

    # cases of 案例联编 (this node's and other nodes', the city's typical cases among them)
    @event_handler("exchange", "Case.*", requeue_on_error=True)
    @idempotent
    def on_case(self, event, uow):
        return record_case_event(uow, event)

    # 活动联办 activities and sessions other nodes share (上下联学), and attendance at them
    # as recorded once in the exchange: joinable here, counted for 月月行, reported back
    @event_handler("exchange", "JointActivity.*", requeue_on_error=True)
    @idempotent
    def on_activity(self, event, uow):
        return record_activity_event(uow, event)

    @event_handler("exchange", "Attendance.*", requeue_on_error=True)
    @idempotent
    def on_attendance(self, event, uow):
        return record_attendance_event(uow, event)

    @rpc(expected_exceptions=QinglianError)
    def check_in_many(self, entries):
        """``check_in`` for many members at once - the console's grouped morning
        check-ins (services/console/checkins.py): ``entries`` [{"data": {"person_id": ...},
        "actor": {"token": <the member's console session>}, "correlation_id": ...}]. Every
        session is checked (in one lookup for all) and every check-in decided on its own.
        An entry with ``"own": true`` is the session's own member's check-in: its person
        id is the user id of the session just checked (the console sends the token
        without looking the session up itself). The answer per entry, in order:
        {"result": ...} as ``check_in`` answers, or
        {"error": ...} (nameko's serialised form of the typed error ``check_in`` raises).
        A failure of the whole call (the databases away) is raised, as for one."""
        store = self.store
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BadInput("entries 应为列表，每项含 data 与 actor")
        tokens, refused = [], {}
        for i, e in enumerate(entries):
            try:
                tokens.append(rpc_token(e.get("actor")))
            except Unauthenticated as exc:
                tokens.append(None)
                refused[i] = exc
        with store.metrics.command("check_in_many"), dependency_failures(store.metrics, "check_in_many"):
            actors = [refused.get(i, a) for i, a in enumerate(store.users.authenticate_many(tokens))]
            outcomes = app.check_in_many(store.runtime, [
                (_own(e, actor), actor, e.get("correlation_id") or store.correlation_id)
                for e, actor in zip(entries, actors)])
        return [{"error": serialize(o)} if isinstance(o, BaseException) else {"result": o}
                for o in outcomes]

    @timer(interval=60)
    def routines(self):
        """Each routine is an ordinary command run as the system: validated, metered,
        one transaction, and idempotent for the day - so running every minute costs a
        few reads when nothing is due, and a node that was down catches up on restart."""
        actor = self.store.system_actor()
        for name in ROUTINES:
            try:
                self.store.execute(name, {}, actor)
            except Exception:  # noqa: BLE001 - one failing routine must not stop the others
                log.exception("education routine %s failed; retried on the next tick", name)


def _own(entry: dict, actor):
    """An entry's check-in data: for ``own``, the checked session's member's person id
    (whatever else ``data`` said); a refused session's entry is answered with its
    refusal before its data is read."""
    data = entry.get("data")
    if entry.get("own") is True and isinstance(actor, Actor) and isinstance(data, dict):
        return dict(data, person_id=actor.user_id)
    return data
