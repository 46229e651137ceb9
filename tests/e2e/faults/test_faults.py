"""The fault suite: faults injected while commands flow, on the run's own RabbitMQ node
(``fault_broker``) and district-a's own PostgreSQL databases, never the machine's.

One network (tests/e2e/faults/harness.py) for the module; each test is one fault with its
own record ids, and reports exact counts per read model: written (acknowledged to the
client), received, lost, duplicated, and the time to converge after the fault. Two
streams run through each fault: units registered at district-a (mirrored over the
broker into supervision, education and exchange at district-a), and shared experience
records drafted at district-a (federated to the city and district-b). Every read model
must end with exactly what was written: 0 lost, 0 duplicated.
"""
from __future__ import annotations

import time

import pytest

from shared.db import create_database, drop_database
from tests.e2e.faults.harness import FaultNetwork, Stream, wait_until
from tests.fixtures import PG_SERVER

pytestmark = pytest.mark.slow

CONVERGE = 120.0  # seconds allowed after a fault (what it takes here is printed)
UNIT_MODELS = [("units", "unit_tree")] + [(s, "unit_directory") for s in ("supervision", "education", "exchange")]


@pytest.fixture(scope="module")
def fnet(fault_broker, tmp_path_factory):
    pg = {s: create_database(PG_SERVER) for s in ("units", "supervision", "education", "exchange")}
    net = FaultNetwork(tmp_path_factory.mktemp("faults"), fault_broker, pg)
    try:
        net.start()
        a = net["district-a"]
        units = a.api("units")
        assert units.post("register_unit", {"unit_id": "a-gw", "name": "甲区区直机关工委",
                                            "kind": "district_authority", "level": "district"}) == 201
        assert units.post("register_unit", {"unit_id": "a-xj", "name": "甲区x局", "kind": "government_dept",
                                            "level": "unit", "parent_id": "a-gw"}) == 201
        wait_until(lambda: a.query("exchange", "SELECT 1 FROM unit_directory WHERE unit_id = 'a-xj'"),
                   60, "a-xj mirrored into the exchange service")
        yield net
    finally:
        net.stop()
        for url in pg.values():
            drop_database(url)


def unit_stream(net, prefix: str) -> Stream:
    return counted(net, Stream(net["district-a"].api("units"), "register_unit", lambda i: (
        "%s-%04d" % (prefix, i), {"unit_id": "%s-%04d" % (prefix, i), "name": "单位%d" % i,
                                  "kind": "government_dept", "level": "unit", "parent_id": "a-gw"})))


def counted(net, stream: Stream) -> Stream:
    stream.crashes_before = len(net.crashes)  # what the supervisor restarts from here on
    return stream


def shared_stream(net, prefix: str, pause: float = 0.02) -> Stream:
    return counted(net, Stream(net["district-a"].api("exchange"), "draft_experience", lambda i: (
        "district-a/%s-%04d" % (prefix, i), {
            "experience_id": "%s-%04d" % (prefix, i), "unit_id": "a-xj",
            "title": "清廉机关建设经验 %d" % i, "summary": "聚焦责任抓落实。",
            "body": "组织学习示范点建设经验做法。", "business_type": "示范点建设",
            "topics": ["示范点"], "share": {"sharing": "all", "recipients": []}}), pause=pause))


def unit_models(net, prefix):
    a = net["district-a"]
    return {"district-a %s.%s" % (s, t): [r[0] for r in a.query(
        s, "SELECT unit_id FROM %s WHERE unit_id LIKE :p" % t, p=prefix + "-%")] for s, t in UNIT_MODELS}


def unit_duplicates(net, prefix):
    """Events recorded twice for one unit: a second Registered in any service's log."""
    a = net["district-a"]
    return {s: a.query(s, "SELECT stream_id, count(*) FROM events WHERE event_type LIKE '%.Registered' "
                          "AND stream_id LIKE :p GROUP BY stream_id HAVING count(*) > 1", p="%:" + prefix + "-%")
            for s, _ in UNIT_MODELS}


def record_models(net, prefix):
    return {"%s exchange.records" % n: [r[0] for r in net[n].query(
        "exchange", "SELECT record_id FROM shared_records WHERE owner = 'district-a' AND record_id LIKE :p",
        p="district-a/%s-%%" % prefix)] for n in ("district-a", "city", "district-b")}


def record_duplicates(net, prefix):
    """An origin event applied twice at a node (its log holds the event id twice)."""
    return {n: net[n].query("exchange", "SELECT event_id, count(*) FROM events GROUP BY event_id "
                                        "HAVING count(*) > 1") for n in ("city", "district-b")}


def settle(net, fault: str, streams: dict, since: float) -> None:
    """Wait until every read model has every written id, then report and assert."""
    expected = {"units": set(streams["units"].ids) if "units" in streams else set(),
                "records": set(streams["records"].ids) if "records" in streams else set()}

    def models():
        out = {}
        if "units" in streams:
            out.update({k: ("units", v) for k, v in unit_models(net, streams["units"].prefix).items()})
        if "records" in streams:
            out.update({k: ("records", v) for k, v in record_models(net, streams["records"].prefix).items()})
        return out

    def done():
        return all(set(v) >= expected[kind] for kind, v in models().values())
    try:
        wait_until(done, CONVERGE, "every read model after %s" % fault)
        converged = "%.1fs" % (time.monotonic() - since)
    except AssertionError:
        converged = "NOT within %.0fs" % CONVERGE
    dupes = {}
    if "units" in streams:
        dupes.update(unit_duplicates(net, streams["units"].prefix))
    if "records" in streams:
        dupes.update(record_duplicates(net, streams["records"].prefix))
    report, problems = [], []
    for name, (kind, got) in sorted(models().items()):
        lost = expected[kind] - set(got)
        extra = set(got) - expected[kind]
        report.append("  %-34s written %5d  received %5d  lost %d  duplicated %d  unexpected %d"
                      % (name, len(expected[kind]), len(got), len(lost), len(got) - len(set(got)), len(extra)))
        if lost or extra or len(got) != len(set(got)):
            problems.append("%s: lost %s, unexpected %s" % (name, sorted(lost)[:5], sorted(extra)[:5]))
    for where, rows in dupes.items():
        if rows:
            problems.append("%s logged twice: %s" % (where, rows[:5]))
    unanswered = sum(s.unanswered for s in streams.values())
    crashed = net.crashes[min(s.crashes_before for s in streams.values()):]
    print("\n%s (converged %s after the fault; %d commands sent again after no answer; "
          "restarted after exiting on their own: %s):\n%s"
          % (fault, converged, unanswered, ", ".join(crashed) or "none", "\n".join(report)))
    for s in streams.values():
        assert not s.refused, "commands refused: %s" % s.refused[:5]
    if problems:
        print(net.log_tails())
    assert not problems, "%s: %s\n%s" % (fault, "; ".join(problems), "\n".join(report))
    assert all(len(s.ids) for s in streams.values())


def run_streams(net, prefix: str, units: int = 150, records: int = 100) -> dict:
    streams = {"units": unit_stream(net, prefix + "u"), "records": shared_stream(net, prefix + "r")}
    streams["units"].prefix, streams["records"].prefix = prefix + "u", prefix + "r"
    streams["units"].thread = streams["units"].run(units)
    streams["records"].thread = streams["records"].run(records)
    return streams


def join(streams, timeout: float = 180.0):
    for s in streams.values():
        s.thread.join(timeout)
        assert not s.thread.is_alive(), "a command stream did not finish"


def test_kill_9_each_service_mid_stream(fnet):
    """One stream; each of district-a's services in turn is killed and started again."""
    streams = run_streams(fnet, "k9", units=300, records=200)
    for service in ("units", "supervision", "education", "exchange"):
        proc = fnet["district-a"].services[service]
        time.sleep(0.5)
        proc.kill9()
        time.sleep(0.5)
        proc.start()
        proc.wait_ready()
    since = time.monotonic()
    join(streams)
    settle(fnet, "kill -9 of district-a's units, supervision, education and exchange, one by one",
           streams, since)


@pytest.mark.parametrize("fault", ["stop_app/start_app", "full restart"])
def test_broker_fault_mid_stream(fnet, fault):
    streams = run_streams(fnet, "br%s" % fault[:2])
    time.sleep(1.0)
    if fault == "full restart":
        fnet.broker.restart()
    else:
        fnet.broker.stop_app()
        time.sleep(3)
        fnet.broker.start_app()
    since = time.monotonic()
    join(streams)
    settle(fnet, "broker %s" % fault, streams, since)


def test_postgresql_connections_terminated_mid_stream(fnet):
    a = fnet["district-a"]
    names = [a.databases[s].rsplit("/", 1)[1] for s in a.databases]
    streams = run_streams(fnet, "pg")
    terminated = 0
    for _ in range(3):
        time.sleep(1.0)
        # only the connections of this network's own databases
        terminated += len(fnet.query_server(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = ANY(:names) AND pid <> pg_backend_pid()", names=names))
    assert terminated > 0
    since = time.monotonic()
    join(streams)
    settle(fnet, "%d PostgreSQL connections terminated" % terminated, streams, since)


def test_a_district_unreachable_for_60s_while_1000_shared_are_published(fnet):
    b = fnet["district-b"].services["exchange"]
    fnet.partition.cut()
    b.kill9()  # its broker links and its feed are both out of reach
    cut_at = time.monotonic()
    records = shared_stream(fnet, "cut", pause=0.0)
    records.prefix = "cut"
    # four clients at once: the 1,000 go out well within the minute the district is away
    threads = [records.run(250, start=k * 250) for k in range(4)]
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a command stream did not finish"
    streams = {"records": records}
    wait_until(lambda: len(record_models(fnet, "cut")["city exchange.records"]) == 1000, CONVERGE,
               "the city to have all 1000 while district-b is away")
    assert record_models(fnet, "cut")["district-b exchange.records"] == []
    time.sleep(max(0.0, 61.0 - (time.monotonic() - cut_at)))
    fnet.partition.heal()
    b.start()
    b.wait_ready()
    settle(fnet, "district-b unreachable for %.0fs" % (time.monotonic() - cut_at), streams, time.monotonic())


def test_everything_restarted_mid_stream(fnet):
    services = [s for n in fnet.nodes.values() for s in n.services.values()]
    streams = run_streams(fnet, "all")
    time.sleep(1.0)
    for s in services:
        s.kill9()
    fnet.broker.restart()
    for s in services:
        s.start()
    for s in services:
        s.wait_ready()
    since = time.monotonic()
    join(streams)
    settle(fnet, "every service killed and the broker restarted", streams, since)
