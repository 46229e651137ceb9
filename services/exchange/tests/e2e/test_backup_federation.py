"""A district lost and restored from a backup federates again: it catches up with what
its peers published after the backup (pulled from their feeds: its broker queue had
already delivered those to the node that was lost), and what it publishes afterwards
reaches the city and the other district - every record exactly once, in origin order."""
from __future__ import annotations

import shutil

import pytest

from tests.harness import wait_for
from tests.harness.exchange import RunningNode, start_network, stop_network
from services.exchange.tests.e2e.test_catchup import _all_ids, assert_exactly_once_in_order
from tooling.backup import backup, restore

pytestmark = pytest.mark.slow


def publish(node, unit: str, prefix: str, n: int) -> list[str]:
    return [node.execute("draft_experience", {
        "experience_id": "%s-%03d" % (prefix, i), "unit_id": unit,
        "title": "清廉机关建设经验 %d" % i, "summary": "聚焦责任抓落实。",
        "body": "组织学习示范点建设经验做法。", "business_type": "示范点建设",
        "topics": ["示范点"], "share": {"sharing": "all", "recipients": []}})["experience_id"]
        for i in range(n)]


@pytest.fixture
def network(tmp_path):
    net, nodes = start_network(tmp_path)
    yield net, nodes
    stop_network(net, nodes)


def test_a_restored_district_catches_up_and_federates_again(network, tmp_path):
    net, nodes = network
    a, city, b = nodes["district-a"], nodes["city"], nodes["district-b"]
    before = publish(a, "a-xj", "bk-before", 20)
    for peer in (city, b):
        wait_for(lambda: len(_all_ids(peer, "district-a", "bk-")) == 20, what="the first 20 at %s" % peer.node_id)

    archive = backup(tmp_path / "backups", a.local.config, progress=lambda *_: None)  # online

    city_after = publish(city, "city-jw", "bk-city", 15)
    b_after = publish(b, "b-xj", "bk-b", 10)
    wait_for(lambda: len(_all_ids(a, "city", "bk-city")) == 15 and len(_all_ids(a, "district-b", "bk-b")) == 10,
             what="the lost node to have received them before it is lost")

    # district-a is lost (services and disks); a fresh one is restored from the backup
    a.stop()
    shutil.move(str(a.local.var_dir), str(tmp_path / "lost"))
    manifest = restore(archive, a.local.config, progress=lambda *_: None)
    assert manifest["databases"]["exchange"]["events"] > 0
    a = nodes["district-a"] = RunningNode(a.local).start()

    wait_for(lambda: len(_all_ids(a, "city", "bk-city")) == 15 and len(_all_ids(a, "district-b", "bk-b")) == 10,
             timeout=60, what="the restored district to catch up from its peers' feeds")
    assert_exactly_once_in_order(a, "city", city_after, "bk-city")
    assert_exactly_once_in_order(a, "district-b", b_after, "bk-b")
    assert _all_ids(a, "district-a", "bk-") == sorted(before)  # its own records, from the backup

    resumed = publish(a, "a-xj", "bk-resumed", 5)
    for peer in (city, b):
        wait_for(lambda: len(_all_ids(peer, "district-a", "bk-")) == 25, timeout=60,
                 what="what the restored node publishes at %s" % peer.node_id)
        assert_exactly_once_in_order(peer, "district-a", before + resumed, "bk-")
