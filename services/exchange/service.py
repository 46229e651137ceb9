"""The exchange nameko service (五联五互): the kernel's service plus federation.

Federation is four extensions of the application (``@app.extension``), which the
kernel's ``EventSourcing`` provider builds once per container after its runtime - nameko
sets a container's providers up concurrently, and federation needs the runtime (engine,
projections) first: ``federation`` (``rt.ext.federation``: identity, keys, peers), the
outbox ``publisher`` and the inbox ``consumer`` (``services.exchange.federation``) and
``anchoring`` (``services.exchange.anchors``), the last three with a managed thread each
beside the kernel's relay.

Settings (nameko config keys, with defaults):

* ``QINGLIAN_FEDERATION``: ``on``; ``off`` runs the service without its two threads
  (local work only, e.g. tests of the commands).
* ``FEDERATION_SYNC_SECONDS``: 60 - how often every peer's feed is asked for news (the
  backstop behind AMQP; also run at start).
* ``FEDERATION_GAP_GRACE_SECONDS``: 0.25 - how long a hole in an origin's sequence may
  wait for the missing message before its feed is pulled.
* ``FEDERATION_ANCHOR_SECONDS``: 300 - how often this node's log heads are signed and
  sent to the node holding its anchors (0: never; services.exchange.anchors).
* ``FEDERATION_GAP_CEILING_SECONDS``: 300 - the longest wait between two pulls for a
  hole that stays open (the wait doubles after each pull that does not close it).
"""
from __future__ import annotations

import functools
import json
import logging
import time

from nameko.rpc import rpc
from nameko.timer import timer
from werkzeug.wrappers import Response

from services.exchange.anchors import AnchorRefused, Anchoring
from services.exchange.application import (
    INDICATOR_SOURCES, app, close_talk_case, progress_escalation, progress_task, publish_register,
    record_indicators, refer_escalation, refer_talk, refer_task, refresh_exemplars,
)
from services.exchange.federation import (
    Federation, InboxConsumer, OutboxPublisher, metadata as federation_metadata, write_identity,
)
from shared import config, logs
from shared.auth import NODE_ADMIN
from shared.brokerusers import PUBLISHER, owned_event_handler, owner_login
from shared.errors import Forbidden, QinglianError, Unauthenticated
from shared.federation.feed import FeedRefused
from shared.federation.keys import init_this_node, load_or_create_node_key, node_registry
from shared.http import http
from shared.service import MirrorsUnits, NodeService, bearer_token, idempotent, json_response

log = logging.getLogger(__name__)

REGISTER_INTERVAL_S = 600  # the unit register goes up only when it changed


# -- federation: this node's extensions, built once per container after the kernel's
# runtime (nameko sets up a container's providers concurrently, and federation needs the
# runtime's engine and projections, so it is not a provider of its own)
@app.extension("federation")
def _federation(host) -> Federation:
    """``rt.ext.federation``: this node's identity, keys and peers; command functions stage
    what they share through it (``application.fed``)."""
    cfg, rt = host.config, host.runtime
    federation_metadata.create_all(rt.engine)
    registry = node_registry(cfg)
    me = registry.this_node()
    if me is None:
        # a fresh node (`make run` before `qinglian node init`): give it an identity
        # so it works locally; its peers must be told its key before they trust it
        me = init_this_node(cfg, registry=registry)
        log.warning("node %s had no identity: created its key and registry entry; give "
                    "its peers `qinglian federation identity` before linking", me.node_id)
    key = load_or_create_node_key(cfg)
    federation = Federation(
        rt, me.node_id, me.level, me.parent, key, registry, host.metrics,
        grace=float(cfg.get("FEDERATION_GAP_GRACE_SECONDS", 0.25)),
        sync_interval=float(cfg.get("FEDERATION_SYNC_SECONDS", 60)),
        gap_ceiling=float(cfg.get("FEDERATION_GAP_CEILING_SECONDS", 300)))
    write_identity(rt.engine, me.node_id, me.level, federation.city_id)
    # wake the publisher after a commit that staged something - not after every commit:
    # on a receiving node each applied batch woke it for an empty look (two queries),
    # 6 % of the city's CPU in the scale bench. Why this cannot strand a record: the
    # test is stage's own rule on the committed events themselves (no flag shared
    # between green threads that a concurrent commit could clear first), and the
    # publisher still polls (IdleBackoff, at most 1 s) for what another process staged.
    rt.after_commit.append(lambda events: federation.staged_any(events)
                           and federation.publisher_wake.set())
    host.on_stop(federation.publisher_wake.set)
    return federation


def _federate(cfg) -> bool:
    """QINGLIAN_FEDERATION=off: the service runs without its threads (local work only)."""
    return str(cfg.get("QINGLIAN_FEDERATION", "on")).lower() not in ("off", "0", "false")


# how long a stop waits for a federation thread to finish the batch it is applying
THREAD_JOIN_S = 5


@app.extension("publisher")
def _publisher(host) -> OutboxPublisher:
    """The outbox publisher: what this node shares, out over AMQP."""
    federation = host.ext.federation
    publisher = OutboxPublisher(federation, config.amqp_uri(host.config))

    def wait(seconds: float) -> None:
        federation.publisher_wake.wait(seconds)
        federation.publisher_wake.clear()

    def run():
        logs.bind(service="exchange", node=federation.node_id, task="federation-publisher")
        publisher.run(host.stopping, wait)
    if _federate(host.config):
        host.thread("federation-publisher", run, THREAD_JOIN_S)
    return publisher


@app.extension("consumer")
def _consumer(host) -> InboxConsumer:
    """The inbox consumer: other nodes' records, in over AMQP and from their feeds."""
    federation = host.ext.federation
    consumer = InboxConsumer(federation, config.amqp_uri(host.config))

    def run():
        logs.bind(service="exchange", node=federation.node_id, task="federation-consumer")
        consumer.run(host.stopping, time.sleep)
    if _federate(host.config):
        host.thread("federation-consumer", run, THREAD_JOIN_S)
    return consumer


@app.extension("anchoring")
def _anchoring(host) -> Anchoring:
    """This node's log heads, signed and sent every FEDERATION_ANCHOR_SECONDS (the first a
    few seconds after start; 0: never), and the anchors it holds for its peers."""
    anchoring = Anchoring(host.ext.federation, host.config)
    every = float(host.config.get("FEDERATION_ANCHOR_SECONDS", 300))

    def run():
        wait = min(every, 5.0)
        while not host.stopping():
            deadline = time.monotonic() + wait
            while not host.stopping() and time.monotonic() < deadline:
                time.sleep(0.2)
            if host.stopping():
                return
            try:
                anchoring.take()
            except Exception as exc:  # noqa: BLE001 - next time; a log never waits for it
                log.warning("anchors: taking this node's log heads failed: %s", exc)
            wait = every
    if _federate(host.config) and every > 0:
        host.thread("federation-anchors", run, THREAD_JOIN_S)
    return anchoring


def from_owner(source: str):
    """Handle a message only if the broker says ``source``'s own login published it
    (shared.brokerusers). Checked before the event is tracked, so a forgery carrying a
    genuine event's id cannot make the genuine one look like a repeat."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, body):
            expected = owner_login(source, self.store.config)
            publisher = self.store.context.get(PUBLISHER)
            if expected is not None and publisher != expected:
                consumer = "%s.%s" % (self.name, fn.__name__)
                self.store.metrics.consumer_failed(consumer)
                log.warning("%s refused a message published by %r, not by %s's own login %s",
                            consumer, publisher, source, expected)
                return None
            return fn(self, body)
        return wrapper
    return deco


class ExchangeService(MirrorsUnits, NodeService):
    name = "exchange"
    app = app

    # -- the feed other nodes pull (repair and catch-up) -----------------------------------
    @http("GET", "/feed")
    def feed(self, request):
        """Signed entries after ``after`` for the signed-in node (shared.federation.feed)."""
        try:
            body = self.store.ext.federation.feed_page(request.headers, request.args)
        except FeedRefused as exc:
            return json_response({"error": "feed_refused", "message": str(exc)}, exc.status or 403)
        except ValueError as exc:
            return json_response({"error": "bad_input", "message": str(exc)}, 400)
        return Response(body, status=200, mimetype="application/json")

    # public: a peer's statement carries its own proof (the node's signature)
    @http("POST", "/anchors", public=True, max_body=64 * 1024)
    def anchors_in(self, request):
        """A peer's signed log heads, kept append-only (services.exchange.anchors)."""
        try:
            stmt = json.loads(request.get_data() or b"null")
            new = self.store.ext.anchoring.receive(stmt)
        except AnchorRefused as exc:
            return json_response({"error": "anchor_refused", "message": str(exc)}, exc.status)
        except (ValueError, RecursionError):
            return json_response({"error": "bad_input", "message": "请求内容不是有效的 JSON"}, 400)
        return json_response({"kept": new}, 201 if new else 200)

    @http("GET", "/anchors")
    def anchors_out(self, request):
        """The anchors this node holds for ``node`` (a trusted node's signed request)."""
        try:
            held = self.store.ext.anchoring.serve(request.headers, request.args)
        except FeedRefused as exc:
            return json_response({"error": "refused", "message": str(exc)}, exc.status or 403)
        except AnchorRefused as exc:
            return json_response({"error": "anchor_refused", "message": str(exc)}, exc.status)
        return json_response({"anchors": held})

    @http("GET", "/federation/status")
    def federation_status_http(self, request):
        try:
            self.store.authenticate(bearer_token(request))
        except QinglianError as exc:
            return json_response(exc.to_dict(), exc.status)
        return json_response(self.store.ext.federation.status())

    @http("POST", "/federation/sync")
    def federation_sync_http(self, request):
        try:
            actor = self.store.authenticate(bearer_token(request))
            if not actor.has(NODE_ADMIN):
                raise Forbidden("仅限节点管理员")
        except QinglianError as exc:
            return json_response(exc.to_dict(), exc.status)
        self.store.ext.federation.sync_requested.set()
        return json_response({"sync": "requested"}, 202)

    # over RPC as over HTTP: proof of who calls (``actor={"token": ...}``, shared.auth)
    def _rpc_caller(self, proof):
        actor = self.store.rpc_actor(proof)
        if actor is None:
            raise Unauthenticated('需要凭证 actor={"token": ...}')
        return actor

    @rpc(expected_exceptions=QinglianError)
    def federation_sync(self, actor=None):
        """Ask the consumer thread to pull every peer's feed now (it runs it next)."""
        if not self._rpc_caller(actor).has(NODE_ADMIN):
            raise Forbidden("仅限节点管理员")
        self.store.ext.federation.sync_requested.set()
        return {"sync": "requested"}

    @rpc(expected_exceptions=QinglianError)
    def federation_state(self, actor=None):
        self._rpc_caller(actor)
        return self.store.ext.federation.status()

    # -- 上下联学 / 活动联办 with this node's education service (education_link) -----------
    # a session organised for other nodes is shared with them as a 活动联办 record; a unit's
    # attendance entered in education becomes this node's Attendance, sent to the organiser
    @owned_event_handler("education", "StudySession.SharedWithNodes", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def education_session_shared(self, event, uow):
        from services.exchange.education_link import share_education_session
        share_education_session(uow, event)

    @owned_event_handler("education", "SessionParticipation.Attended", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def education_attended(self, event, uow):
        from services.exchange.education_link import attendance_from_education
        attendance_from_education(uow, event)

    @owned_event_handler("education", "SessionParticipation.Corrected", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def education_attendance_corrected(self, event, uow):
        from services.exchange.education_link import attendance_from_education
        attendance_from_education(uow, event)

    # -- 上下互比 figures from this node's other services ---------------------------------
    # requeue_on_error: a figure that meets a busy log must come back, not be acked and
    # lost (shared.service.handle_once pauses, retries and dead-letters what never works)
    # from_owner: only what the owning service published is signed and shared onwards
    @owned_event_handler("supervision", "UnitIndicators.Published", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def unit_indicators(self, event, uow):
        self._indicators(event, uow)

    @owned_event_handler("supervision", "DistrictIndicators.Published", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def district_indicators(self, event, uow):
        self._indicators(event, uow)

    @owned_event_handler("education", "EducationIndicators.Published", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def education_indicators(self, event, uow):
        self._indicators(event, uow)

    @owned_event_handler("education", "DistrictEducationIndicators.Published", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def district_education_indicators(self, event, uow):
        self._indicators(event, uow)

    # 四种形态 counts (counts only) and 责任书 coverage go up to the city like the figures
    @owned_event_handler("supervision", "DisciplineCounts.Published", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def discipline_counts(self, event, uow):
        self._indicators(event, uow)

    @owned_event_handler("units", "LetterCoverage.Published", requeue_on_error=True)
    @from_owner("units")
    @idempotent
    def letter_coverage(self, event, uow):
        self._indicators(event, uow)

    # -- 督办: the ladder's city rung and what happens to the case afterwards ---------------
    @owned_event_handler("supervision", "Rectification.ReferredToCity", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def referred_to_city(self, event, uow):
        refer_escalation(uow, event)

    @owned_event_handler("supervision", "Rectification.DeadlineExtended", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def escalated_extended(self, event, uow):
        progress_escalation(uow, event)

    @owned_event_handler("supervision", "Rectification.Rejected", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def escalated_rejected(self, event, uow):
        progress_escalation(uow, event)

    @owned_event_handler("supervision", "Rectification.Verified", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def escalated_verified(self, event, uow):
        progress_escalation(uow, event)

    @owned_event_handler("supervision", "Rectification.Reopened", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def escalated_reopened(self, event, uow):
        progress_escalation(uow, event)

    @owned_event_handler("supervision", "Rectification.Escalated", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def escalated_again(self, event, uow):
        progress_escalation(uow, event)

    # 跟踪问效 tasks whose ladder reached the city rung, and what happens to them afterwards
    @owned_event_handler("supervision", "Task.ReferredToCity", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def task_referred(self, event, uow):
        refer_task(uow, event)

    @owned_event_handler("supervision", "Task.DeadlineExtended", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def task_extended(self, event, uow):
        progress_task(uow, event)

    @owned_event_handler("supervision", "Task.Returned", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def task_returned(self, event, uow):
        progress_task(uow, event)

    @owned_event_handler("supervision", "Task.Accepted", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def task_accepted(self, event, uow):
        progress_task(uow, event)

    @owned_event_handler("supervision", "Task.Cancelled", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def task_cancelled(self, event, uow):
        progress_task(uow, event)

    @owned_event_handler("supervision", "Task.Escalated", requeue_on_error=True)
    @from_owner("supervision")
    @idempotent
    def task_escalated_again(self, event, uow):
        progress_task(uow, event)

    # 廉政谈话 whose ladder reached the city rung (education; the person stays here)
    @owned_event_handler("education", "IntegrityTalk.Escalated", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def talk_referred(self, event, uow):
        refer_talk(uow, event)

    @owned_event_handler("education", "IntegrityTalk.Held", requeue_on_error=True)
    @from_owner("education")
    @idempotent
    def talk_held(self, event, uow):
        close_talk_case(uow, event)

    # the unit register, shared up to the city when it changed
    @timer(interval=REGISTER_INTERVAL_S)
    def register_timer(self):
        with self.store.runtime.unit_of_work(self.store.system_actor()) as uow:
            return publish_register(uow)

    @staticmethod
    def _indicators(event, uow):
        assert event.event_type in INDICATOR_SOURCES
        if record_indicators(uow, event) is None:
            log.warning("exchange: %s %s has no period or no numeric indicators; ignored",
                        event.event_type, event.event_id)
            return
        refresh_exemplars(uow, event)  # 典型联树: published figures stay current

