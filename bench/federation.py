"""Federation benchmark: a district and the city as vhosts of the local RabbitMQ, their
exchange services as nameko containers in this process, SQLite stores under var/.

* ``propagation_p50_s`` / ``propagation_p99_s``: a district commits a shared record
  (``draft_experience`` published 'all') at a steady 100 per second; the time until it
  is in the city's read model. "In the read model" is the city's commit of the
  replica: projections are updated inline in that same transaction, so the commit
  hook (``Runtime.after_commit``) fires exactly when a query would first see it. The
  path timed: outbox row -> publisher (AMQP tx) -> federation link -> city inbox ->
  verify, check, order -> append + projections -> commit.
* ``catchup_events_per_s``: the city is stopped, the district publishes 10,000
  records, the city's inbox queue is deleted (it missed them: nothing waits for it on
  AMQP) and the city is started again. Rate = 10,000 / time from its start until its
  watermark for the district reaches the district's head - all of it pulled from the
  district's signed feed, verified and applied; three rounds, the median. Printed
  beside the same node's local rate of rebuilding that read model (the shared feed)
  from its own log (``local_rebuild_events_per_s``): no network, no signatures, no
  log appends - the ceiling a catch-up could approach.

``python -c "from bench import federation; print(federation.run('var'))"``
"""
import eventlet

eventlet.monkey_patch()  # the services run here as under `nameko run`

import logging  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.common import Timer, figure, percentile, rate  # noqa: E402

RATE = 100          # events per second, steady
WARMUP = 50
SAMPLES = 1500      # 15 s at 100/s
CATCHUP = 10_000
ROUNDS = 3          # catch-up rounds (the machine is shared: the median is reported)


def run(var_dir) -> dict:
    from nameko.containers import ServiceContainer
    from nameko.testing.utils import get_extension
    from services.exchange.application import app, save_and_share
    from services.exchange.domain import Experience
    from services.exchange.federation import INBOX_QUEUE
    from services.exchange.localnet import LocalNetwork
    from services.exchange.service import ExchangeService, ExchangeStore
    from shared.auth import Actor
    from shared.events import StoredEvent
    from shared import config
    from shared.db import make_engine
    from shared.projections import rebuild
    from shared.uow import Runtime
    from shared.unittree import record_unit_event

    logging.getLogger("services.exchange.federation").setLevel(logging.ERROR)
    root = Path(var_dir) / "bench" / "federation-nodes"
    if root.exists():
        shutil.rmtree(root)
    # sync: only the start-up pull (the catch-up); realtime is AMQP alone
    net = LocalNetwork(root, districts=("district-a",), extra={"FEDERATION_SYNC_SECONDS": 3600})
    net.create()
    containers = {}

    def start(node_id):
        c = ServiceContainer(ExchangeService, net[node_id].config)
        c.start()
        containers[node_id] = c
        return get_extension(c, ExchangeStore)

    try:
        city, district = start("city"), start("district-a")
        actor = Actor("bench", ("node-admin",), None, "district-a")
        with district.runtime.unit_of_work(actor) as uow:
            record_unit_event(uow, StoredEvent(0, "u1", "Unit:a-xj", "Unit", 1, "Unit.Registered", 1,
                                               {"unit_id": "a-xj", "name": "甲区x局", "kind": "government_dept",
                                                "level": "district", "parent_id": None}, {}, 0))
        net.wait_bindings(60)

        # -- propagation at a steady rate -------------------------------------------------
        arrived: dict[str, float] = {}

        def seen(events):
            now = time.perf_counter()
            for e in events:
                if e.event_type == "Experience.Published":
                    arrived[e.payload["experience_id"]] = now
        city.runtime.after_commit.append(seen)
        sent: dict[str, float] = {}

        def publish(i: int) -> str:
            return district.app.execute(district.runtime, "draft_experience", {
                "experience_id": "bench-%05d" % i, "unit_id": "a-xj", "title": "经验 %d" % i,
                "summary": "聚焦责任抓落实", "body": "示范点建设经验做法。", "business_type": "示范点建设",
                "topics": ["示范点"], "share": {"sharing": "all", "recipients": []}}, actor)["experience_id"]

        total = WARMUP + SAMPLES
        t0 = time.perf_counter()
        for i in range(total):
            delay = t0 + i / RATE - time.perf_counter()
            if delay > 0:
                eventlet.sleep(delay)
            rid = publish(i)
            sent[rid] = time.perf_counter()
        deadline = time.monotonic() + 60
        while len(arrived) < total and time.monotonic() < deadline:
            eventlet.sleep(0.05)
        ids = ["district-a/bench-%05d" % i for i in range(WARMUP, total)]
        lat = [arrived[r] - sent[r] for r in ids if r in arrived]
        lost = len(ids) - len(lat)
        offered = rate(total, sent[ids[-1]] - t0)
        city.runtime.after_commit.remove(seen)

        # -- catch-up of a node that missed 10,000 (three rounds, the median) -----------------
        from services.exchange.federation import PUBLISHER_CHECKPOINT
        containers.pop("city").stop()
        rounds = []
        for r in range(ROUNDS):
            batch = 200
            for b in range(0, CATCHUP, batch):
                with district.runtime.unit_of_work(actor) as uow:
                    for i in range(b, b + batch):
                        exp = Experience.draft("district-a/missed-%d-%05d" % (r, i), {
                            "unit_id": "a-xj", "unit_name": "甲区x局", "title": "错过的经验 %d" % i,
                            "summary": "s", "body": "b", "business_type": "示范点建设",
                            "topics": ["示范点"], "attachments": []})
                        exp.share("all", [])
                        save_and_share(uow, exp)
            with district.runtime.read() as conn:
                head = district.federation.outbox_head(conn)
            # let the district finish publishing them (the burst is not what is measured)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with district.runtime.read() as conn:
                    if (district.runtime.store.get_checkpoint(conn, PUBLISHER_CHECKPOINT) or 0) >= head:
                        break
                eventlet.sleep(0.1)
            # what waited for the city on AMQP is gone: it missed these for good
            net.admin._call("DELETE", "queues", net.city.vhost, INBOX_QUEUE, missing_ok=True)
            rounds.append(catch_up_in_own_process(net, root, head))
        rounds.sort(key=lambda f: f["value"])
        catch = dict(rounds[len(rounds) // 2])
        catch["rounds"] = [round(f["value"]) for f in rounds]
        engine = make_engine(config.database_url("exchange", net.city.config))
        rt = Runtime(engine, app.projections, "city", "exchange")
        with rt.read() as conn:
            log_head = rt.store.head(conn)
        shared = [p for p in rt.projections if p.name == "exchange_records"][0]
        with Timer() as t_rebuild:
            rebuild(rt.store, shared)  # the read model the catch-up filled, from the log
        engine.dispose()
        rebuild_rate = rate(log_head, t_rebuild.seconds)
    finally:
        for c in containers.values():
            c.stop()
        net.destroy()

    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    catch["local_rebuild_events_per_s"] = round(rebuild_rate)
    prop99 = figure(p99, "s", 0.25, lower_is_better=True)
    prop99.update(samples=len(lat), lost=lost, offered_per_s=round(offered, 1))
    return {
        "propagation_p50_s": figure(p50, "s", 0.25, lower_is_better=True),
        "propagation_p99_s": prop99,
        "catchup_events_per_s": catch,
    }


def catch_up_in_own_process(net, root: Path, head: int) -> dict:
    """Start the city as its own ``nameko run`` process (a node is its own process on
    its own machine; here it gets the second core) and watch its inbox watermark for
    the district from outside, in its database. The rate is taken from its first
    applied page to the last, so the process start-up is not counted as catch-up;
    the whole rejoin time is reported beside it."""
    import os
    import subprocess
    import sys

    from sqlalchemy import select

    from services.exchange.federation import inbox
    from shared import config
    from shared.db import make_engine, readonly

    repo = Path(__file__).resolve().parent.parent
    cfg = root / "nameko.yaml"
    cfg.write_text((repo / "deploy" / "config.yaml").read_text(encoding="utf-8")
                   + "\nFEDERATION_SYNC_SECONDS: 3600\n", encoding="utf-8")
    env = dict(os.environ, **{k: str(v) for k, v in net.city.config.items()})
    log = open(root / "city.log", "ab")
    engine = make_engine(config.database_url("exchange", net.city.config))

    def watermark() -> int:
        with readonly(engine.connect()) as conn:
            return conn.execute(select(inbox.c.applied_through)
                                .where(inbox.c.origin == "district-a")).scalar() or 0

    start_w = watermark()
    t_spawn = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(cfg),
                             "services.exchange.service:ExchangeService"],
                            env=env, cwd=str(repo), stdout=log, stderr=log)
    try:
        first = None
        deadline = time.monotonic() + 180
        w = start_w
        while time.monotonic() < deadline and proc.poll() is None:
            w = watermark()
            now = time.perf_counter()
            if first is None and w > start_w:
                first = (now, w)
            if w >= head:
                break
            eventlet.sleep(0.01)
        done = time.perf_counter()
    finally:
        proc.terminate()
        proc.wait(30)
        engine.dispose()
    caught_up = w >= head and first is not None and done > first[0]
    value = rate(head - first[1], done - first[0]) if caught_up else 0.0
    f = figure(value, "events/s", 5_000)
    f.update(missed_events=head - start_w, rejoin_total_s=round(done - t_spawn, 2))
    return f


if __name__ == "__main__":
    import json
    print(json.dumps(run("var"), indent=2))
