"""deploy/multinode/ must agree with the code and with the topology it claims: three
nodes, each with its own broker (own cluster name), database and services, the
federation scripts, and Prometheus scraping every service of every node. (No Docker
engine here: the file is checked, not run; the same steps run for real in the demo and
the CLI tests.)"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from shared import config

ROOT = Path(__file__).resolve().parents[3]
DIR = ROOT / "deploy" / "multinode"
NODES = {"city": ("city", ""), "district-a": ("district", "city"), "district-b": ("district", "city")}
SERVICES = dict(units=8101, supervision=8102, education=8103, exchange=8104)


def compose() -> dict:
    return yaml.safe_load((DIR / "docker-compose.yml").read_text(encoding="utf-8"))


def test_every_node_has_its_own_broker_database_and_services():
    services = compose()["services"]
    for node, (level, parent) in NODES.items():
        assert {"rabbitmq-%s" % node, "postgres-%s" % node, "bootstrap-%s" % node,
                "federate-%s" % node} <= set(services)
        for svc, port in SERVICES.items():
            spec = services["%s-%s" % (svc, node)]
            env = spec["environment"]
            assert (env["NODE_ID"], env["NODE_LEVEL"], env["NODE_PARENT"]) == (node, level, parent)
            assert "@rabbitmq-%s:5672/" % node in env["AMQP_URI"]       # its own broker
            assert "@postgres-%s:5432/%s" % (node, svc) in env["%s_DATABASE_URL" % svc.upper()]
            assert env["WEB_SERVER_ADDRESS"].endswith(":%d" % port)
            assert spec["command"][-1] == "services.%s.service:%s" % (
                svc, {"units": "UnitsService", "supervision": "SupervisionService",
                      "education": "EducationService", "exchange": "ExchangeService"}[svc])
            # only variables the code reads (shared.config.ENV_VARS)
            assert set(env) <= set(config.ENV_VARS), set(env) - set(config.ENV_VARS)
            assert spec["depends_on"]["bootstrap-%s" % node]["condition"] == "service_completed_successfully"


def test_brokers_have_distinct_cluster_names():
    names = {}
    for node in NODES:
        text = (DIR / "rabbitmq" / ("%s.conf" % node)).read_text()
        names[node] = re.search(r"^cluster_name = (\S+)$", text, re.M).group(1)
        mount = "./rabbitmq/%s.conf:/etc/rabbitmq/conf.d/20-qinglian.conf:ro" % node
        assert mount in compose()["services"]["rabbitmq-%s" % node]["volumes"]
    assert len(set(names.values())) == len(NODES)
    # and the bootstrap sets it again through the management API (old data volumes)
    assert 'qinglian federation cluster-name "qinglian-$NODE_ID"' in (DIR / "bootstrap.sh").read_text()


def test_prometheus_scrapes_every_service_of_every_node():
    prom = yaml.safe_load((DIR / "prometheus.yml").read_text())
    targets = {(t, c["labels"]["node"]) for job in prom["scrape_configs"]
               for c in job["static_configs"] for t in c["targets"]}
    assert targets == {("%s-%s:%d" % (svc, node, port), node)
                       for svc, port in SERVICES.items() for node in NODES}
    assert "prometheus" in compose()["services"]


def _subcommands(parser) -> set[str]:
    import argparse
    root = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = set()
    for name, sub in root.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                out |= {"%s %s" % (name, c) for c in action.choices}
    return out


def test_federation_scripts_are_valid_and_use_real_commands():
    for script in ("bootstrap.sh", "federate.sh"):
        subprocess.run(["sh", "-n", str(DIR / script)], check=True)
    from tooling.cli import build_parser
    known = _subcommands(build_parser())
    text = (DIR / "bootstrap.sh").read_text() + (DIR / "federate.sh").read_text()
    used = set(re.findall(r"qinglian ([a-z]+ [a-z-]+)", text)) | {"node trust"}
    assert used and used <= known, used - known
    assert {"node init", "node trust", "federation link", "federation link-user",
            "federation identity", "federation cluster-name"} <= used
    # every link logs in as the restricted user its upstream made for it (the district's
    # at the city, the city's at each district), never as a broker's admin
    federate = (DIR / "federate.sh").read_text()
    assert "ql-link-$NODE_ID" in federate
    assert federate.count("federation link-user") == 2
    links = re.findall(r"link_from \"[^\n]*", federate)
    assert len(links) == 2 and all("amqp://ql-link-$NODE_ID:" in l for l in links), links
    assert "BROKER_USER" not in federate and "BROKER_PASSWORD" not in federate
