"""Exchange-service nodes in the test process: one nameko container per node, each on its
own vhost of a ``LocalNetwork`` (city, district-a, district-b), linked like real nodes."""
from __future__ import annotations

import uuid

from nameko.testing.utils import get_extension

from services.exchange.service import ExchangeService
from shared.auth import Actor
from shared.events import StoredEvent
from shared.service import EventSourcing, NodeContainer
from shared.unittree import record_unit_event
from tooling.localnet import LocalNetwork, LocalNode

FAST = {"FEDERATION_SYNC_SECONDS": 2, "FEDERATION_GAP_GRACE_SECONDS": 0.2}

UNITS = {
    "city": [("city-gw", "市直机关工委", "city_authority", "city", None),
             ("city-jw", "市纪委监委驻市直机关纪检组", "government_dept", "unit", "city-gw")],
    "district-a": [("a-gw", "甲区区直机关工委", "district_authority", "district", None),
                   ("a-xj", "甲区x局（示范点）", "government_dept", "unit", "a-gw"),
                   ("a-window", "甲区政务服务窗口", "window_unit", "unit", "a-gw")],
    "district-b": [("b-gw", "乙区区直机关工委", "district_authority", "district", None),
                   ("b-xj", "乙区x局", "government_dept", "unit", "b-gw"),
                   ("b-station", "乙区基层站所", "grassroots_station", "unit", "b-gw")],
}


class RunningNode:
    def __init__(self, local: LocalNode):
        self.local = local
        self.node_id = local.node_id
        self.container = None
        self.admin = Actor("admin", ("node-admin",), None, local.node_id)

    def start(self) -> "RunningNode":
        self.container = NodeContainer(ExchangeService, self.local.config)
        self.container.start()
        self.provider = get_extension(self.container, EventSourcing)
        return self

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()
            self.container = None

    @property
    def runtime(self):
        return self.provider.runtime

    @property
    def fed(self):
        return self.provider.runtime.ext.federation

    def execute(self, name: str, data: dict, actor: Actor | None = None):
        return self.provider.app.execute(self.runtime, name, data, actor or self.admin)

    def query(self, name: str, params: dict | None = None, actor: Actor | None = None):
        return self.provider.app.run_query(self.runtime, name, params or {}, actor or self.admin)

    def record(self, rid: str) -> dict | None:
        from shared.errors import NotFound
        try:
            return self.query("get_record", {"record_id": rid})
        except NotFound:
            return None

    def feed_ids(self, **kw) -> list[str]:
        return [i["record_id"] for i in self.query("shared_feed", dict(kw, limit=200))["items"]]

    def seed_units(self, units=None) -> None:
        """The unit tree as the units service would have published it (mirrored)."""
        for version_, (uid, name, kind, level, parent) in enumerate(units or UNITS[self.node_id]):
            event = StoredEvent(0, "seed-%s-%s" % (self.node_id, uid), "Unit:%s" % uid, "Unit", 1,
                                "Unit.Registered", 1,
                                {"unit_id": uid, "name": name, "kind": kind, "level": level,
                                 "parent_id": parent}, {"node": self.node_id}, 0)
            with self.runtime.unit_of_work() as uow:
                record_unit_event(uow, event)


def start_network(tmp_path, extra=None, **kw) -> tuple[LocalNetwork, dict[str, RunningNode]]:
    net = LocalNetwork(tmp_path, extra=dict(FAST, **(extra or {})), **kw).create()
    nodes = {}
    try:
        for node_id, local in net.nodes.items():
            nodes[node_id] = RunningNode(local).start()
            nodes[node_id].seed_units()
        net.wait_bindings()
    except BaseException:
        stop_network(net, nodes)
        raise
    return net, nodes


def stop_network(net: LocalNetwork, nodes: dict[str, RunningNode]) -> None:
    for node in nodes.values():
        try:
            node.stop()
        except Exception:  # noqa: BLE001
            pass
    net.destroy()


def send_marker(origin: RunningNode, sharing: str = "all", recipients=()) -> str:
    """Post a problem at ``origin`` after everything the test sent and return its id.

    A node applies each origin's records in ``origin_seq`` order (``OriginSequencer``:
    a gap waits, then the origin's feed says what filled it), so a node that holds the
    marker has settled every earlier number of that origin: whatever of them was going
    to reach it has. Wait for it with ``tests.harness.assert_nothing_after``."""
    slug = "marker-%s" % uuid.uuid4().hex[:10]
    return origin.execute("post_problem", {
        "problem_id": slug, "unit_id": UNITS[origin.node_id][0][0], "title": "标记 %s" % slug,
        "context": "测试标记", "deadline": "2031-12-31",
        "share": {"sharing": sharing, "recipients": list(recipients)}})["problem_id"]


def holds(rid: str, *nodes: RunningNode):
    """A predicate: every one of ``nodes`` holds record ``rid``."""
    return lambda: all(node.record(rid) for node in nodes)
