"""Nothing acknowledged may be dropped (issue 11, B7).

* a check over every service class: each ``@event_handler`` requeues on error and goes
  through ``handle_once`` (tracking, retry pause, dead letters);
* the exchange's indicator handler fails while the log's writer lock is held (the
  failure seen under load) and the event is applied once the lock is free;
* a malformed message and a handler that can never succeed end as dead letters, and
  the consumer carries on with what follows.
"""
from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from nameko.events import EventHandler, event_handler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.testing.utils import get_extension
from sqlalchemy import select, text

import services
import shared.service
from services.exchange.service import ExchangeService
from shared.service import EventSourcing, NodeService, idempotent
from shared.store import dead_letters
from tests.harness import wait_for


def service_classes():
    """Every nameko service class under services/ (any module named service.py)."""
    found = {}
    for mod in pkgutil.walk_packages(services.__path__, "services."):
        if mod.name.endswith(".service"):
            module = importlib.import_module(mod.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if isinstance(getattr(cls, "name", None), str) and cls.__module__ == mod.name:
                    found[cls.__qualname__] = cls
    return found


def handlers(cls):
    for name, member in inspect.getmembers(cls, callable):
        for ext in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(ext, EventHandler):
                yield name, member, ext


def test_every_event_handler_requeues_and_goes_through_handle_once():
    classes = service_classes()
    assert {"UnitsService", "SupervisionService", "EducationService", "ExchangeService"} <= set(classes)
    seen, wrong = 0, []
    for cls_name, cls in classes.items():
        for name, member, ext in handlers(cls):
            seen += 1
            if not ext.requeue_on_error:
                wrong.append("%s.%s: requeue_on_error is not set" % (cls_name, name))
            code = member.__code__
            if not (hasattr(member, "__wrapped__") or "handle_once" in code.co_names + code.co_varnames):
                wrong.append("%s.%s: neither @idempotent nor handle_once" % (cls_name, name))
    assert seen >= 10 and not wrong, wrong


def test_the_check_finds_a_handler_that_would_drop_its_message():
    class Careless(NodeService):
        name = "careless"

        @event_handler("units", "Unit.Registered")
        @idempotent
        def on_unit(self, event, uow):
            pass
    assert [ext.requeue_on_error for _, _, ext in handlers(Careless)] == [False]


def indicators_message(unit_id="fin", period="2026-02", coverage=0.75):
    return {"event_id": str(uuid.uuid4()), "position": 7, "stream_type": "EducationIndicators",
            "stream_id": "EducationIndicators:%s/%s" % (unit_id, period), "version": 1,
            "type": "EducationIndicators.Published", "schema_version": 1,
            "payload": {"unit_id": unit_id, "period": period, "checkin_coverage": coverage,
                        "warning_education_held": True},
            "metadata": {"node": "district-test", "correlation_id": "c1",
                         "occurred_at": "2026-03-01T10:00:00+08:00"}}


def publish(uri, exchange, body, routing_key):
    with Connection(uri) as conn:
        Producer(conn.channel(), exchange=Exchange(exchange, type="topic", durable=True),
                 serializer="json").publish(body, routing_key=routing_key)


def reports(container):
    rt = get_extension(container, EventSourcing).runtime
    with rt.read() as c:
        return [e for e in rt.store.iter_all(c) if e.stream_type == "IndicatorReport"]


def errors(container, consumer):
    m = get_extension(container, EventSourcing).metrics
    return m.consumer_errors.labels(m.service, consumer)._value.get()


def test_an_indicator_event_that_meets_a_busy_log_is_applied_later(container_factory, node_config,
                                                                   pg_url, engine_for):
    """The exchange tracked 693 of 719 figures under load: a handler that met the
    writer lock was acked and its event lost. Now it is requeued and applied."""
    node_config.update(EXCHANGE_DATABASE_URL=pg_url, QINGLIAN_FEDERATION="off")
    container = container_factory(ExchangeService, node_config)
    container.start()
    consumer = "exchange.education_indicators"
    first = indicators_message("fin")
    holder = engine_for(pg_url).connect()
    tx = holder.begin()
    holder.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))  # the log's writer lock
    try:
        publish(node_config["AMQP_URI"], "education.events", first, first["type"])
        wait_for(lambda: errors(container, consumer) >= 1, timeout=30)  # met the lock, failed
        assert reports(container) == []
    finally:
        tx.commit()
        holder.close()
    applied = wait_for(lambda: reports(container), timeout=30)
    assert [e.payload["unit_id"] for e in applied if e.event_type.endswith("Recorded")] == ["fin"]
    # applied once: a later event's report is the positive signal that nothing else came
    second = indicators_message("mkt")
    publish(node_config["AMQP_URI"], "education.events", second, second["type"])
    wait_for(lambda: len(reports(container)) == 2, timeout=30)
    assert sorted(e.payload["unit_id"] for e in reports(container)) == ["fin", "mkt"]


class Doomed(ExchangeService):
    """The exchange plus one handler that can never succeed."""

    @event_handler("education", "EducationIndicators.Published", requeue_on_error=True)
    @idempotent
    def doomed(self, event, uow):
        raise RuntimeError("this handler cannot handle %s" % event.payload["unit_id"])


def test_malformed_and_hopeless_messages_are_dead_lettered_not_retried_for_ever(
        container_factory, node_config, monkeypatch):
    monkeypatch.setattr(shared.service, "MAX_HANDLER_ATTEMPTS", 3)
    node_config.update(QINGLIAN_FEDERATION="off")
    container = container_factory(Doomed, node_config)
    container.start()
    uri = node_config["AMQP_URI"]
    publish(uri, "education.events", {"not": "an event"}, "EducationIndicators.Published")
    hopeless = indicators_message("fin")
    publish(uri, "education.events", hopeless, hopeless["type"])
    engine = get_extension(container, EventSourcing).runtime.engine

    def letters():
        with engine.connect() as c:
            return c.execute(select(dead_letters).order_by(dead_letters.c.id)).mappings().all()
    rows = wait_for(lambda: [r for r in letters() if r["consumer"] == "exchange.doomed"
                             and r["event_id"] == hopeless["event_id"]], timeout=60)
    assert rows[0]["attempts"] == 3 and "cannot handle fin" in rows[0]["error"]
    assert json.loads(rows[0]["body"]) == hopeless
    malformed = [r for r in letters() if r["event_id"] is None]
    # both consumers of the queue-per-handler got the malformed body: both kept it
    assert {r["consumer"] for r in malformed} == {"exchange.doomed", "exchange.education_indicators"}
    assert all(json.loads(r["body"]) == {"not": "an event"} for r in malformed)
    # the healthy handler applied the hopeless event for its own part, and goes on
    later = indicators_message("mkt")
    publish(uri, "education.events", later, later["type"])
    wait_for(lambda: len(reports(container)) == 2, timeout=30)
    wait_for(lambda: len([r for r in letters() if r["consumer"] == "exchange.doomed"]) == 3, timeout=60)
