"""Alert rules, recording rules and the Grafana dashboard, checked with Prometheus's own
tool (``promtool``, Debian package ``prometheus``, installed by .ci/run) and against the
/metrics of the four services running on a real broker:

* ``promtool check rules`` and ``promtool test rules`` (deploy/prometheus/tests/);
* ``promtool check config`` on both Prometheus configs (their rule files included);
* ``promtool check metrics`` on every service's /metrics;
* every metric a rule or a dashboard panel names is one a service exposes;
* both compose files mount the rules where the config looks and provision Grafana.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from nameko.testing.utils import find_free_port

from tests.fixtures import AMQP_SERVER
from tests.unit.test_compose import mounted_file

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "rules_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "qinglian.json"
GRAFANA = ROOT / "deploy" / "grafana"
COMPOSES = {  # compose file -> the Prometheus config its prometheus container mounts
    ROOT / "docker-compose.yml": ROOT / "deploy" / "prometheus.yml",
    ROOT / "deploy" / "multinode" / "docker-compose.yml": ROOT / "deploy" / "multinode" / "prometheus.yml",
}
# series Prometheus itself makes (not the services)
PROMETHEUS_OWN = {"up", "ALERTS"}



def promtool(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: install Debian's prometheus package (.ci/run does)"
    return subprocess.run([tool, *args], input=stdin, capture_output=True, text=True,
                          cwd=str(ROOT), timeout=120)


def test_rules_are_valid():
    r = promtool("check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_unit_tests_pass():
    # each alert fires on its failure, not on a healthy node, and not before its `for`
    r = promtool("test", "rules", str(RULE_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("config", sorted(set(COMPOSES.values())), ids=lambda p: str(p.relative_to(ROOT)))
def test_prometheus_configs_load_the_rules(config):
    r = promtool("check", "config", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    rule_files = yaml.safe_load(config.read_text(encoding="utf-8")).get("rule_files") or []
    assert [(config.parent / f).resolve() for f in rule_files] == [RULES]


def _compose_services(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["services"]


@pytest.mark.parametrize("compose", sorted(COMPOSES), ids=lambda p: str(p.relative_to(ROOT)))
def test_compose_mounts_the_rules_and_provisions_grafana(compose, monkeypatch):
    import tests.unit.test_compose as tc
    monkeypatch.setattr(tc, "ROOT", compose.parent)  # mounted_file resolves against it
    services = _compose_services(compose)
    config = COMPOSES[compose]
    prom = services["prometheus"]
    assert mounted_file(prom, "/etc/prometheus/prometheus.yml") == config
    # the container sees the rules where the config's relative rule_files points
    for rule_file in yaml.safe_load(config.read_text(encoding="utf-8"))["rule_files"]:
        target = os.path.normpath(os.path.join("/etc/prometheus", rule_file))
        assert mounted_file(prom, target) == RULES, (compose, target)
    grafana = services["grafana"]
    assert "prometheus" in (grafana.get("depends_on") or [])
    assert mounted_file(grafana, "/etc/grafana/provisioning") == GRAFANA / "provisioning"
    assert mounted_file(grafana, "/var/lib/grafana/dashboards") == DASHBOARD.parent


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus():
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "qinglian.yml")
                               .read_text(encoding="utf-8"))["providers"]
    assert [p["options"]["path"] for p in providers] == ["/var/lib/grafana/dashboards"]
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
                             .read_text(encoding="utf-8"))["datasources"]
    assert [(s["type"], s["url"]) for s in sources] == [("prometheus", "http://prometheus:9090")]
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {t["datasource"]["uid"] for p in dash["panels"] for t in p.get("targets", [])}
    assert uids == {sources[0]["uid"]}
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# -- against the running services ------------------------------------------------------------
@pytest.fixture(scope="module")
def exposed(rabbit_admin, tmp_path_factory):
    """service -> its /metrics text, the four services running on one node and vhost."""
    from shared import registry
    from shared.service import NodeContainer
    name = "qlt-alert-%s" % uuid.uuid4().hex[:8]
    rabbit_admin.ensure_vhost(name)
    var = tmp_path_factory.mktemp("alerting")
    base = {"AMQP_URI": AMQP_SERVER.rstrip("/") + "/" + name, "NODE_ID": "city-alert",
            "NODE_LEVEL": "city", "QINGLIAN_VAR": str(var), "FEDERATION_SYNC_SECONDS": 3600}
    containers, texts = [], {}
    try:
        # a district this city trusts: the per-origin federation series exist for it
        from shared.federation.envelope import generate_keypair, public_key_b64
        from shared.federation.keys import init_this_node, node_registry
        trusted = node_registry(base)
        init_this_node(base, "city", None, registry=trusted)
        trusted.trust("district-peer", "district", "city-alert",
                      public_key_b64(generate_keypair()[0]))
        trusted.engine.dispose()
        for service in registry.services():
            module = __import__("services.%s.service" % service, fromlist=["x"])
            cls = next(v for v in vars(module).values()
                       if isinstance(v, type) and getattr(v, "name", None) == service
                       and getattr(v, "__module__", "") == module.__name__)
            address = "127.0.0.1:%d" % find_free_port()
            container = NodeContainer(cls, dict(base, WEB_SERVER_ADDRESS=address))
            container.start()
            containers.append(container)
            texts[service] = requests.get("http://%s/metrics" % address, timeout=30).text
        yield texts
    finally:
        for container in containers:
            container.stop()
        rabbit_admin.delete_vhost(name)


def test_every_service_metrics_pass_promtool_check_metrics(exposed):
    from shared import registry
    assert set(exposed) == set(registry.services())
    for service, text in exposed.items():
        r = promtool("check", "metrics", stdin=text)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), (
            "%s /metrics: %s" % (service, r.stdout + r.stderr))


def _exposed_names(texts) -> set[str]:
    names = set()
    for text in texts:
        for line in text.splitlines():
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
            if m and not line.startswith("#"):
                names.add(m.group(1))
    return names


def _named_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers followed by `{`, `[` or an
    operator, that are not functions, keywords, label names or recording rules."""
    expr = re.sub(r'"[^"]*"', '""', expr)            # label values
    expr = re.sub(r"\{[^}]*\}", "{}", expr)           # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"\b([a-zA-Z_][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    keywords = {"and", "or", "unless", "bool", "offset", "le", "inf", "nan"}
    return {w for w in words if w not in keywords and ":" not in w
            and not re.fullmatch(r"\d+[smhdwy]?", w) and "_" in w or w in PROMETHEUS_OWN}


def test_rules_and_dashboard_name_only_exposed_metrics(exposed):
    have = _exposed_names(exposed.values()) | PROMETHEUS_OWN
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    exprs = {("rule", r.get("alert") or r.get("record")): r["expr"]
             for g in rules["groups"] for r in g["rules"]}
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs.update({("panel", p["title"] + " " + t["refId"]): t["expr"]
                  for p in dash["panels"] for t in p.get("targets", [])})
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    missing = {}
    for where, expr in exprs.items():
        for name in _named_metrics(expr):
            if name not in have:
                missing.setdefault(name, []).append(where)
        for name in re.findall(r"\b[a-z_]+:[a-z_:0-9]+\b", expr):
            if name not in recorded:
                missing.setdefault(name, []).append(where)
    assert not missing, "named in rules/dashboard but exposed by no service: %s" % missing
    # and the check can see what matters: the alerts' own metrics are among those named
    named = set().union(*(_named_metrics(e) for e in exprs.values()))
    assert {"qinglian_relay_lag_seconds", "qinglian_federation_last_heard_seconds",
            "qinglian_rectifications_overdue", "qinglian_broker_connected"} <= named


def test_timer_routines_exist_at_zero_in_the_services_that_run_them(exposed):
    from services.education.application import ROUTINES
    from services.supervision.service import SupervisionService
    for service, routines in (("education", ROUTINES),
                              ("supervision", SupervisionService.timer_routines)):
        for routine in routines:
            assert ('qinglian_routines_total{outcome="error",routine="%s",service="%s"} 0.0'
                    % (routine, service)) in exposed[service], (service, routine)
