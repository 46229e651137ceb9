"""Education benchmark: the morning check-in burst (廉洁提醒日打卡).

5,000 members of one district check in at about 500 requests/s offered, paced, from
concurrent clients with keep-alive connections - through the HTTP API of a real
EducationService running as a ``nameko run`` subprocess on PostgreSQL (so the load
generator does not share the server's interpreter), nameko's default 10 workers. Each
member checks in with their own bearer token (user id = person id, the self check-in
path). The district (61 party organisations with sections, 5,000 members) is seeded
through the service's own consumer code before the server starts, and the burst begins
once the relay has published that history - a morning's burst pays for relaying its own
check-ins, not for last year's registrations.

The burst is sent in five waves of 1,000 (2 s each at 500/s), alternated with waves of
as many ``GET /health`` (one indexed read) at the same rate, from the same clients, to
the same process: the baseline, so load that comes and goes falls on both.

Figures (bench/common.py):

* ``checkin_burst_p99_ms`` - 99th percentile latency, measured from the moment each
  request was *due* to be sent (not when a free client sent it), so a server falling
  behind shows up in full. Baseline: the p99 of the paced ``/health`` waves, from due,
  likewise. If the client could not offer the intended rate (bench.common
  ``offered_shortfall``), to either side, the figure is "not measured".
  Quiet-machine target p99 <= 200 ms.
* ``checkin_burst_accepted`` - first check-ins answered 200 with ``duplicate: false``,
  against the members who checked in (all must be).
* ``checkin_burst_lost`` - |offered - counted| plus members counted more than once
  (after the burst 5 % of the members tap again: they must be answered
  ``duplicate: true`` and not counted), against the members who checked in; must be 0.
"""
from __future__ import annotations

import itertools
import json
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.common import (
    AT_LEAST, AT_MOST, Client, cpu_seconds, drop_vhost, free_port, judged, offered_shortfall,
    percentile, scratch_database, scratch_vhost, start_service, stop_service, wait_relay_idle,
)

FIGURES = ("checkin_burst_p99_ms", "checkin_burst_accepted", "checkin_burst_lost")
NODE = "bench-district"

MEMBERS = 5000
UNITS = 60            # party organisations, each with two sections
RATE = 500.0          # offered requests per second
CLIENTS = 96          # concurrent keep-alive connections
WAVES = 5             # the burst in waves, alternated with as many /health waves
RETAP = 0.05          # share of members who tap "check in" a second time


# -- seeding: the district as the units service would have sent it ------------------------------
def seed(url: str, node_url: str, today: str, members: int = MEMBERS) -> dict[str, str]:
    """Units, ``members`` (5,000) (recorded through the service's own consumer code), today's
    reminder, and one bearer token per member. Returns person id -> token."""
    from sqlalchemy import insert

    from services.education.application import app, record_person_event
    from services.education.settings import EducationSettings
    from shared.auth import UserDirectory, api_tokens, hash_token, system_actor, users
    from shared.db import make_engine
    from shared.events import StoredEvent
    from shared.projections import prepare
    from shared.unittree import record_unit_event
    from shared.uow import Runtime

    engine = make_engine(url)
    rt = Runtime(engine, app.projections, NODE, "education", settings=EducationSettings())
    rt.create_schema()
    prepare(rt.store, rt.projections, rt.inline_checkpoint)  # as EventSourcing.setup does
    actor = system_actor(NODE)
    pos = itertools.count(1)

    def ev(event_type, payload, version=1):
        return StoredEvent(next(pos), str(uuid.uuid4()), "x", event_type.split(".")[0], version,
                           event_type, 1, payload, {"occurred_at": "2026-01-01T00:00:00+00:00"}, 0)

    sections = []
    with rt.unit_of_work(actor) as uow:
        record_unit_event(uow, ev("Unit.Registered", {"unit_id": "qu", "name": "X区", "parent_id": None,
                                                      "kind": "district_authority", "level": "district"}))
        for u in range(UNITS):
            uid = "u%02d" % u
            record_unit_event(uow, ev("Unit.Registered", {"unit_id": uid, "name": "单位%d" % u,
                                                          "parent_id": "qu", "kind": "government_dept",
                                                          "level": "unit"}))
            for k in range(2):
                sid = "%s-s%d" % (uid, k)
                record_unit_event(uow, ev("Unit.Registered", {"unit_id": sid, "name": "科室%d" % k,
                                                              "parent_id": uid, "kind": "section",
                                                              "level": "section"}))
                sections.append(sid)
    people = ["m%04d" % i for i in range(members)]
    for start in range(0, members, 1000):
        with rt.unit_of_work(actor) as uow:
            for i, pid in enumerate(people[start:start + 1000], start):
                record_person_event(uow, ev("Person.Registered", {
                    "person_id": pid, "name": "党员", "unit_id": sections[i % len(sections)],
                    "post": "科员", "young_cadre": False}), "Registered")
    app.execute(rt, "set_daily_reminder", {"on": today, "text": "廉洁从政，从每一个清晨做起"},
                system_actor(NODE, "admin"))
    engine.dispose()

    node_engine = make_engine(node_url)
    UserDirectory(node_engine, NODE).create_schema()
    tokens = {pid: "ql_" + secrets.token_urlsafe(24) for pid in people}
    now = int(time.time() * 1e6)
    with node_engine.begin() as c:
        c.execute(insert(users), [{"user_id": pid, "name": pid, "roles": "viewer", "unit_scope": None,
                                   "disabled": False, "created_at_us": now} for pid in people])
        c.execute(insert(api_tokens), [{"token_hash": hash_token(t), "user_id": pid, "label": "打卡",
                                        "created_at_us": now, "revoked": False} for pid, t in tokens.items()])
    node_engine.dispose()
    return tokens


# -- the load ---------------------------------------------------------------------------------------
class Paced:
    """The outcome of one paced run: per request (status, duplicate, ms since due, ms
    since sent, client lag ms), the rate the client actually offered, the first error."""

    def __init__(self, results, offered_rps, first_error):
        self.results, self.offered_rps, self.first_error = results, offered_rps, first_error

    @property
    def client_lag_ms(self) -> float:
        return percentile([r[4] for r in self.results if r], 50)

    def from_due_ms(self):
        return [r[2] for r in self.results if r]


def paced(port, jobs, rate, clients) -> Paced:
    """Send ``jobs`` (method, path, body, token) at ``rate``/s; request i is due at
    t0 + i/rate. A client's lag is how late it sent a request that was due while it was
    free (it had finished its previous one): the load generator's own shortfall, not
    the server's."""
    results = [None] * len(jobs)
    errors: list = []  # the first error body, for the report
    sent_at = [0.0] * len(jobs)
    counter = itertools.count()
    t0 = time.perf_counter() + 0.2

    def loop():
        c = Client(port)
        while True:
            i = next(counter)
            if i >= len(jobs):
                return
            picked = time.perf_counter()
            due = t0 + i / rate
            wait = due - picked
            if wait > 0:
                time.sleep(wait)
            method, path, body, token = jobs[i]
            sent = sent_at[i] = time.perf_counter()
            try:
                status, raw = c.request(method, path, body, token)
                dup = json.loads(raw).get("duplicate") if status == 200 and method == "POST" else None
                if status != 200 and not errors:
                    errors.append(raw[:500])
            except Exception:  # noqa: BLE001 - a failed request is a result, not a crash
                status, dup = 0, None
            done = time.perf_counter()
            results[i] = (status, dup, (done - due) * 1000, (done - sent) * 1000,
                          max(0.0, sent - max(due, picked)) * 1000)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = max(sent_at) - t0
    offered = (len(jobs) - 1) / span if span > 0 else float(rate)
    return Paced(results, offered, errors[0].decode("utf-8", "replace") if errors else None)


def burst(port, jobs) -> tuple[Paced, Paced]:
    """The check-in jobs in WAVES waves, alternated with waves of GET /health of the same
    size (health first in even rounds, second in odd ones). Returns (check-ins, health)
    with the offered rate of each the lowest of its waves."""
    size = -(-len(jobs) // WAVES)
    ours, health = [], []
    for r in range(WAVES):
        wave = jobs[r * size:(r + 1) * size]
        trivial = [("GET", "/health", None, None)] * len(wave)
        if r % 2 == 0:
            health.append(paced(port, trivial, RATE, CLIENTS))
            ours.append(paced(port, wave, RATE, CLIENTS))
        else:
            ours.append(paced(port, wave, RATE, CLIENTS))
            health.append(paced(port, trivial, RATE, CLIENTS))

    def merged(runs):
        worst = min(runs, key=lambda p: p.offered_rps)
        lag = max(runs, key=lambda p: p.client_lag_ms)
        out = Paced([x for p in runs for x in p.results], worst.offered_rps,
                    next((p.first_error for p in runs if p.first_error), None))
        out.lag = lag.client_lag_ms
        return out
    return merged(ours), merged(health)


def counted(url: str, today: str) -> tuple[int, int]:
    """(check-in rows for today, distinct members among them) in the read model."""
    from sqlalchemy import func, select

    from services.education.projections import checkins
    from shared.db import make_engine
    engine = make_engine(url)
    with engine.connect() as c:
        n, distinct = c.execute(select(func.count(), func.count(func.distinct(checkins.c.person_id)))
                                .where(checkins.c.day == today)).one()
    engine.dispose()
    return n, distinct


def run(var_dir: str = "var", only=None) -> dict:
    from services.education.dates import local_date
    from shared.config import timezone_name
    from shared.db import drop_database

    folder = Path(tempfile.mkdtemp(prefix="education-bench-"))  # config + server log
    today = local_date(datetime.now(timezone.utc), timezone_name()).isoformat()
    url, node_url = scratch_database("education"), scratch_database("education_node")
    vhost, vhost_uri = scratch_vhost("education")
    proc = None
    try:
        tokens = seed(url, node_url, today)
        port = free_port()
        proc = start_service("services.education.service:EducationService", {
            "AMQP_URI": vhost_uri, "NODE_ID": NODE, "QINGLIAN_VAR": str(folder),
            "EDUCATION_DATABASE_URL": url, "NODE_DATABASE_URL": node_url,
            "WEB_SERVER_ADDRESS": "127.0.0.1:%d" % port}, folder, "education")  # workers as deployed
        wait_relay_idle(url, "education")
        Client(port).request("GET", "/health")
        people = sorted(tokens)
        jobs = [("POST", "/api/check_in", json.dumps({"person_id": p}), tokens[p]) for p in people]
        cpu0, client0 = cpu_seconds(proc.pid), time.process_time()
        ours, health = burst(port, jobs)
        server_cpu, client_cpu = cpu_seconds(proc.pid) - cpu0, time.process_time() - client0
        retap_people = people[::int(1 / RETAP)]
        retaps = paced(port, [("POST", "/api/check_in", json.dumps({"person_id": p}), tokens[p])
                              for p in retap_people], RATE, CLIENTS).results
        rows, distinct = counted(url, today)
    finally:
        if proc is not None:
            stop_service(proc)
        drop_vhost(vhost)
        drop_database(url)
        drop_database(node_url)
    shutil.rmtree(folder, ignore_errors=True)  # kept (with the server's log) only if the run failed

    results = ours.results
    accepted = sum(1 for r in results if r and r[0] == 200 and r[1] is False)
    failed = sum(1 for r in results if not r or r[0] != 200)
    due_ms = ours.from_due_ms()
    sent_ms = [r[3] for r in results if r]
    retaps_ok = sum(1 for r in retaps if r and r[0] == 200 and r[1] is True)
    offered = len(jobs)
    lost = abs(offered - rows) + (rows - distinct)
    short = (offered_shortfall(RATE, ours.offered_rps, ours.lag, health.offered_rps)
             or offered_shortfall(RATE, health.offered_rps, health.lag))
    statuses: dict[str, int] = {}
    for r in results:
        key = str(r[0] if r else "none")
        statuses[key] = statuses.get(key, 0) + 1
    accepted_f = judged(accepted, "requests", offered, "members who checked in", 1.0, AT_LEAST,
                        failed=failed, statuses=statuses)
    if ours.first_error:
        accepted_f["first_error"] = ours.first_error
    return {
        "checkin_burst_p99_ms": judged(
            percentile(due_ms, 99), "ms", percentile(health.from_due_ms(), 99),
            "paced GET /health p99, same process", 40.0, AT_MOST, quiet_machine_target="≤ 200 ms",
            not_measured=short,
            p50_ms=round(percentile(due_ms, 50), 1), p99_from_send_ms=round(percentile(sent_ms, 99), 1),
            max_ms=round(max(due_ms), 1), baseline_p50_ms=round(percentile(health.from_due_ms(), 50), 1),
            intended_rps=RATE, offered_rps=round(ours.offered_rps, 1),
            baseline_offered_rps=round(health.offered_rps, 1),
            client_lag_p50_ms=round(ours.lag, 2), baseline_client_lag_p50_ms=round(health.lag, 2),
            server_cpu_ms_per_request=round(server_cpu / (2 * offered) * 1000, 2),
            client_cpu_ms_per_request=round(client_cpu / (2 * offered) * 1000, 2)),
        "checkin_burst_accepted": accepted_f,
        "checkin_burst_lost": judged(lost, "requests", offered, "members who checked in", 0.0, AT_MOST,
                                     counted=rows, distinct_members=distinct, retaps=len(retap_people),
                                     retaps_answered_duplicate=retaps_ok),
    }
