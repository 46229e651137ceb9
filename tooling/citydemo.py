"""``qinglian demo --districts N``: a city and N districts on this machine, each district
with a seeded year of its own (tooling/scenario.py), federated as in production.

Each node is a vhost of the local RabbitMQ and its own databases (SQLite files under
``var/demo-city/<node>/``), its services as ``nameko run`` processes
(``tooling.citynet.CityNetwork``; by default units and exchange - the exchange carries
everything that crosses nodes, units answers the others' unit-mirror catch-up). Before
the processes start, every district's year is loaded into all four of its services'
logs (``--year-share`` of a full year: 1 is 300 units and 3,000 members); the
exchange then publishes the district's shared records and figures when it starts, and
the demo waits until the city and every district hold what they should: every
district's records and figures at the city, every district's shared records at every
other district. It prints what arrived where and how long it took.

Ctrl-C (or SIGTERM) stops every process and removes the vhosts; ``--check`` does so
right after the agreement check and exits 0 (all arrived) or 1.
"""
from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from shared import config

SERVICES = ("units", "exchange")


def say(text: str) -> None:
    print(text, flush=True)


def run_city_demo(districts: int, check: bool = False, base_port: int = 8200,
                  prefix: str = "qinglian-demo", services=None, year_share: float = 0.02,
                  seed: int = 13, timeout: float = 600.0, keep: bool = False,
                  api: str | None = None) -> int:
    from tooling.citynet import CityNetwork, NetworkError
    from tooling.scenario import Size, Year, load
    services = list(services or SERVICES)
    if "exchange" not in services:
        services.append("exchange")
    root = Path(config.var_dir()).resolve() / "demo-city"
    try:  # bad input is refused before anything is written or removed
        size = Size().scaled(year_share)
        net = CityNetwork(root, districts, base_port, services=services, prefix=prefix, api=api)
    except (ValueError, NetworkError) as exc:
        say("✗ %s" % exc)
        return 2
    if root.exists():
        import shutil
        shutil.rmtree(root)  # a fresh year every run

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    loaded = {}

    def before_start(node):
        if node.level != "district":
            return
        t0 = time.monotonic()
        counts = load(Year(node.node_id, seed, size), node.config)
        loaded[node.node_id] = sum(counts.values())
        say("· %s: a year loaded (%s events: %s) in %.1f s" % (
            node.node_id, "{:,}".format(loaded[node.node_id]),
            ", ".join("%s %s" % (s, "{:,}".format(n)) for s, n in counts.items()),
            time.monotonic() - t0))
    ok = False
    try:
        say("· a city and %d districts as vhosts of %s (prefix %s); %d units and %d members "
            "per district" % (districts, config.amqp_uri(), net.prefix, size.units, size.members))
        t_start = time.monotonic()
        net.start(before_start=before_start)
        say("· %d service processes answer (%s per node; logs in %s/<node>/<service>.log)"
            % (len(net.procs), ", ".join(services), root))
        want = net.expected_records()
        t0 = time.monotonic()
        while True:
            have = net.held_records()
            missing = {n: sum(max(0, w - have[n].get(o, 0)) for o, w in want[n].items())
                       for n in net.node_ids}
            if not any(missing.values()) or time.monotonic() - t0 > timeout:
                break
            time.sleep(1.0)
        ok = not any(missing.values())
        for node in net.node_ids:
            say("  %-12s holds %s records from the others%s" % (
                node, "{:,}".format(sum(have[node].values())),
                "" if not missing[node] else "，缺 %s 条" % "{:,}".format(missing[node])))
        say(("✓ every node holds what the others shared, %.1f s after the services answered "
             "(%.1f s in all)" % (time.monotonic() - t0, time.monotonic() - t_start)) if ok else
            "✗ after %.0f s some records had not arrived (above)" % timeout)
        if not check:
            city = net.api[("city", "exchange")]
            say("· the city's exchange: %s/api/shared_feed (Authorization: Bearer %s); "
                "Ctrl-C stops everything" % (city.base, net.tokens["city"]))
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except NetworkError as exc:
        say("✗ %s" % exc)
    finally:
        left = net.stop(keep=keep)
        if left:
            say("could not remove %s: delete them by hand (`rabbitmqctl delete_vhost`)"
                % ", ".join(left))
    return 0 if ok else 1


if __name__ == "__main__":  # python -m tooling.citydemo N
    sys.exit(run_city_demo(int(sys.argv[1]), check=True))
