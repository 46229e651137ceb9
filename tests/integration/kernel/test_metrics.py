"""/metrics on running services: what each figure means, checked where it matters.

Lags are computed from the log and the checkpoints at every scrape, so they grow while
the broker is gone (the vhost of the test node is deleted under the running service:
the broker closes its connections) and fall back to 0 once it is back.
"""
from __future__ import annotations

import time

import pytest
from marshmallow import Schema
from nameko.events import event_handler
from nameko.timer import timer

from services.units.service import UnitsService
from shared.app import Application
from shared.auth import NODE_ADMIN
from shared.errors import RuleViolation
from shared.metrics import OUTCOMES
from shared.service import NodeService, idempotent
from tests.harness import Api
from tests.scrape import Scrape, scrape_when

UNIT = {"unit_id": "qu", "name": "某区区直机关工委", "kind": "district_authority",
        "level": "district", "parent_id": None}


def _unit(n: int) -> dict:
    return {"unit_id": "u%d" % n, "name": "单位%d" % n, "kind": "window_unit", "level": "unit",
            "parent_id": "qu"}


def test_relay_lag_grows_while_the_broker_is_gone_and_returns_to_zero(
        container_factory, node_config, admin_token, vhost, rabbit_admin):
    container = container_factory(UnitsService, node_config)
    container.start()
    api, address = Api(node_config["WEB_SERVER_ADDRESS"], admin_token), node_config["WEB_SERVER_ADDRESS"]
    assert api.post("register_unit", UNIT)[0] == 201

    up = scrape_when(address, lambda s: s.value("qinglian_relay_lag_events", service="units") == 0
                     and s.value("qinglian_broker_connected", connection="relay") == 1)
    assert up.value("qinglian_relay_lag_seconds", service="units") == 0
    assert up.value("qinglian_relay_published_total", service="units") == 1

    rabbit_admin.delete_vhost(vhost["name"])  # the broker closes every connection
    scrape_when(address, lambda s: s.value("qinglian_broker_connected", connection="relay") == 0)
    # commands still work (they only write the log); nothing can be published
    for n in range(3):
        assert api.post("register_unit", _unit(n))[0] == 201
    first = Scrape(address)
    assert first.value("qinglian_relay_lag_events", service="units") == 3
    assert first.value("qinglian_probe_success", probe="relay_lag") == 1
    time.sleep(1.2)
    later = Scrape(address)
    assert later.value("qinglian_relay_lag_events", service="units") == 3
    # the age of the oldest unsent event, not a value remembered from the last publish
    assert later.value("qinglian_relay_lag_seconds", service="units") >= \
        first.value("qinglian_relay_lag_seconds", service="units") + 1.0

    rabbit_admin.ensure_vhost(vhost["name"])
    back = scrape_when(address, lambda s: s.value("qinglian_relay_lag_events", service="units") == 0)
    assert back.value("qinglian_relay_lag_seconds", service="units") == 0
    assert back.value("qinglian_relay_published_total", service="units") == 4
    scrape_when(address, lambda s: s.value("qinglian_broker_connected", connection="relay") == 1)


# -- a service with a timer, a command that fails and a consumer --------------------------
class Empty(Schema):
    pass


metered = Application("metered")


@metered.command("tick", Empty, roles=(NODE_ADMIN,))
def tick(uow, data):
    return {"ticked": True}


@metered.command("refuse", Empty, roles=(NODE_ADMIN,))
def refuse(uow, data):
    raise RuleViolation("不允许")


class MeteredService(NodeService):
    name = "metered"
    app = metered
    timer_routines = ("tick",)

    @timer(interval=0.1)
    def every_tick(self):
        self.store.execute("tick", {}, self.store.system_actor())

    @event_handler("units", "Unit.Registered")
    @idempotent
    def on_unit(self, event, uow):
        pass


@pytest.fixture
def metered_node(container_factory, node_config, admin_token):
    node_config["QINGLIAN_RELAY"] = "off"
    container = container_factory(MeteredService, node_config)
    container.start()
    return Api(node_config["WEB_SERVER_ADDRESS"], admin_token), node_config["WEB_SERVER_ADDRESS"]


def test_series_exist_at_zero_before_the_first_failure(metered_node):
    api, address = metered_node
    s = Scrape(address)
    for command in ("tick", "refuse"):
        for outcome in OUTCOMES:
            assert s.value("qinglian_commands_total", command=command, outcome=outcome) == 0, (
                command, outcome)
    for outcome in OUTCOMES:
        assert s.value("qinglian_routines_total", routine="tick", outcome=outcome) is not None
    assert s.value("qinglian_consumer_errors_total", consumer="metered.on_unit") == 0
    assert s.value("qinglian_consumer_redeliveries_total", consumer="metered.on_unit") == 0
    # then the first failure is an increase from 0, which increase() sees
    assert api.post("refuse", {})[0] == 409
    after = Scrape(address)
    assert after.value("qinglian_commands_total", command="refuse", outcome="rule_violation") == 1
    assert after.value("qinglian_commands_total", command="refuse", outcome="ok") == 0


def test_timer_routines_are_counted_apart_from_user_commands(metered_node):
    api, address = metered_node
    ran = scrape_when(address, lambda s: (s.value("qinglian_routines_total", routine="tick",
                                                  outcome="ok") or 0) >= 3)
    assert ran.value("qinglian_commands_total", command="tick", outcome="ok") == 0
    assert ran.value("qinglian_routine_seconds_count", routine="tick") >= 3
    assert api.post("tick", {})[0] == 200
    after = Scrape(address)
    assert after.value("qinglian_commands_total", command="tick", outcome="ok") == 1
    assert after.value("qinglian_command_seconds_count", command="tick") == 1


def test_latency_buckets_reach_well_above_five_seconds_and_process_metrics_are_there(metered_node):
    _api, address = metered_node
    s = Scrape(address)
    bounds = sorted(float(labels["le"]) for labels in s.series("qinglian_command_seconds_bucket")
                    if labels["command"] == "tick")
    assert bounds[-1] == float("inf") and bounds[-2] >= 60
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "python_gc_objects_collected_total"):
        assert s.value(name) is not None, name
    assert s.value("python_info") == 1
    build = s.series("qinglian_build_info")
    assert len(build) == 1 and build[0]["service"] == "metered" and build[0]["version"] not in ("", "unknown")
