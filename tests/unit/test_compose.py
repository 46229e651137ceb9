"""docker-compose.yml and deploy/ must agree with the code they deploy.

Names, ports, commands, databases and scrape targets are written twice (in the code and
in the deployment files); these checks fail as soon as the two drift apart.
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from shared import config as node_config
from shared import registry

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = ROOT / "docker-compose.yml"
NAMEKO_CONFIG_PATH = ROOT / "deploy" / "config.yaml"
ENTRYPOINT_PATH = ROOT / "deploy" / "entrypoint.sh"

SERVICES = registry.services()
SERVICE_TARGET = re.compile(r"^(services\.(\w+)\.service):(\w+)$")

# ENV_VARS entries deploy/config.yaml may leave out (none today).
CONFIG_KEY_EXCEPTIONS: dict[str, str] = {}
# ENV_VARS entries whose config.yaml default may differ from shared/config.py's.
CONFIG_DEFAULT_EXCEPTIONS = {
    "WEB_SERVER_ADDRESS": "one config serves every service: the launcher sets the port",
}


@lru_cache(maxsize=None)
def compose() -> dict:
    with open(COMPOSE_PATH, encoding="utf-8") as fle:
        return yaml.safe_load(fle)


def container(name: str) -> dict:
    containers = compose().get("services") or {}
    assert name in containers, "docker-compose.yml has no %r container" % name
    return containers[name]


def environment(spec: dict) -> dict[str, str | None]:
    env = spec.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"]
        pairs = (item.split("=", 1) for item in env)
        env = {pair[0]: (pair[1] if len(pair) > 1 else None) for pair in pairs}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def published_ports(spec: dict) -> dict[int, int | None]:
    """container port -> host port (None when only the container port is given)."""
    ports = {}
    for entry in spec.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            ports[int(entry["target"])] = int(published) if published else None
            continue
        parts = str(entry).split("/", 1)[0].split(":")  # [ip:]host:container
        ports[int(parts[-1])] = int(parts[-2]) if len(parts) > 1 else None
    return ports


def mounted_file(spec: dict, target: str) -> Path | None:
    """The repo file a container mounts at `target` (short or long volume syntax)."""
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            source, dest = volume.get("source"), volume.get("target")
        else:
            parts = str(volume).split(":")
            if len(parts) < 2:
                continue
            source, dest = parts[0], parts[1]
        if dest == target and source and source.startswith("."):
            return (ROOT / source).resolve()
    return None


def command_words(spec: dict) -> list[str]:
    words = []
    for key in ("entrypoint", "command"):
        value = spec.get(key) or []
        words.extend(value.split() if isinstance(value, str) else [str(w) for w in value])
    return words


def database_urls() -> dict[tuple[str, str], str]:
    """(container, variable) -> URL, for every *_DATABASE_URL compose sets."""
    return {
        (name, var): value
        for name, spec in (compose().get("services") or {}).items()
        for var, value in environment(spec).items()
        if var.endswith("_DATABASE_URL") and value
    }


def test_every_service_has_a_container():
    missing = [s for s in SERVICES if s not in (compose().get("services") or {})]
    assert not missing, "services of the registry without a docker-compose.yml container: %s" % missing


@pytest.mark.parametrize("service", SERVICES)
def test_service_environment_is_what_the_code_reads(service):
    env = environment(container(service))
    unknown = sorted(set(env) - set(node_config.ENV_VARS))
    assert not unknown, (
        "%s sets variables shared.config.ENV_VARS does not name (the code never reads "
        "them): %s" % (service, unknown)
    )
    required = {
        "NODE_ID", "NODE_LEVEL", "AMQP_URI", "NODE_DATABASE_URL", "WEB_SERVER_ADDRESS",
        "%s_DATABASE_URL" % service.upper(),
    }
    absent = sorted(name for name in required if not env.get(name))
    assert not absent, "%s container lacks (or leaves empty) %s" % (service, absent)


@pytest.mark.parametrize("service", SERVICES)
def test_service_is_built_from_the_shared_image(service):
    build = container(service).get("build")
    dockerfile = build.get("dockerfile") if isinstance(build, dict) else None
    assert dockerfile == "deploy/Dockerfile", (
        "%s container should build deploy/Dockerfile, has build: %r" % (service, build)
    )
    assert (ROOT / dockerfile).is_file(), "deploy/Dockerfile is missing"


@pytest.mark.parametrize("service", SERVICES)
def test_web_port_is_the_default_port_and_published(service):
    spec = container(service)
    expected = node_config.DEFAULT_PORTS[service]
    address = environment(spec).get("WEB_SERVER_ADDRESS") or ""
    host, _, port = address.rpartition(":")
    assert port.isdigit() and int(port) == expected, (
        "%s: WEB_SERVER_ADDRESS=%r, but shared.config.DEFAULT_PORTS[%r] is %d"
        % (service, address, service, expected)
    )
    assert host in ("0.0.0.0", ""), (
        "%s: WEB_SERVER_ADDRESS=%r binds %r, unreachable from other containers"
        % (service, address, host)
    )
    ports = published_ports(spec)
    assert expected in ports, "%s: container port %d is not published (ports: %s)" % (
        service, expected, spec.get("ports"))


@pytest.mark.parametrize("service", SERVICES)
def test_command_runs_an_existing_service_class(service):
    words = command_words(container(service))
    targets = [m for m in map(SERVICE_TARGET.match, words) if m]
    assert len(targets) == 1, (
        "%s: command/entrypoint should name one module:Class to `nameko run`, got %r"
        % (service, words)
    )
    assert "deploy/config.yaml" in words, "%s: command should pass --config deploy/config.yaml" % service
    module_name, package, class_name = targets[0].groups()
    assert package == service, "%s container runs %s, another service's module" % (
        service, targets[0].group(0))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.fail("%s: cannot import %s named in docker-compose.yml: %s" % (service, module_name, exc))
    cls = getattr(module, class_name, None)
    assert isinstance(cls, type), "%s: %s has no class %s (named in docker-compose.yml)" % (
        service, module_name, class_name)
    assert isinstance(getattr(cls, "name", None), str) and cls.name, (
        "%s.%s has no nameko service `name`" % (module_name, class_name))


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_runs_each_service_like_compose(service, tmp_path):
    # deploy/entrypoint.sh is the image's default command (SERVICE=<name>); it asks the
    # registry, run here against a stand-in `nameko` that prints what it was given
    (tmp_path / "nameko").write_text('#!/bin/sh\necho "$WEB_SERVER_ADDRESS $*"\n', encoding="utf-8")
    (tmp_path / "nameko").chmod(0o755)
    env = {"PATH": "%s:%s:/usr/bin:/bin" % (tmp_path, Path(sys.executable).parent),
           "SERVICE": service, "QINGLIAN_VAR": str(tmp_path / "var")}
    done = subprocess.run(["sh", str(ENTRYPOINT_PATH)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    address, *words = done.stdout.split()
    assert address == "0.0.0.0:%d" % node_config.DEFAULT_PORTS[service], (
        "deploy/entrypoint.sh gives %s %s, DEFAULT_PORTS says %d"
        % (service, address, node_config.DEFAULT_PORTS[service]))
    compose_target = [w for w in command_words(container(service)) if SERVICE_TARGET.match(w)]
    assert words == ["run", "--config", "deploy/config.yaml", *compose_target], (
        "deploy/entrypoint.sh runs %s as %r, docker-compose.yml as %r" % (service, words, compose_target))
    assert os.access(ENTRYPOINT_PATH, os.X_OK), "deploy/entrypoint.sh is not executable"


def test_entrypoint_refuses_a_service_the_registry_does_not_know(tmp_path):
    env = {"PATH": "%s:/usr/bin:/bin" % Path(sys.executable).parent, "SERVICE": "billing"}
    done = subprocess.run(["sh", str(ENTRYPOINT_PATH)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 64
    assert ", ".join(SERVICES) in done.stderr and "'billing'" in done.stderr


def test_prometheus_scrapes_exactly_the_services():
    spec = container("prometheus")
    path = mounted_file(spec, "/etc/prometheus/prometheus.yml")
    assert path is not None, "prometheus container does not mount a repo prometheus.yml"
    assert path == ROOT / "deploy" / "prometheus.yml", "prometheus mounts %s" % path
    scrape = yaml.safe_load(path.read_text(encoding="utf-8"))
    targets = set()
    for job in scrape.get("scrape_configs") or []:
        assert job.get("metrics_path", "/metrics") == "/metrics", (
            "job %r scrapes %r, services serve /metrics" % (job.get("job_name"), job["metrics_path"]))
        assert job.get("scheme", "http") == "http", "job %r is not plain http" % job.get("job_name")
        for static in job.get("static_configs") or []:
            targets.update(static.get("targets") or [])
    expected = {"%s:%d" % (s, node_config.DEFAULT_PORTS[s]) for s in SERVICES}
    assert targets == expected, (
        "deploy/prometheus.yml scrapes %s; the services listen on %s"
        % (sorted(targets), sorted(expected)))


def test_rabbitmq_has_management_federation_and_shovel():
    spec = container("rabbitmq")
    path = mounted_file(spec, "/etc/rabbitmq/enabled_plugins")
    assert path is not None and path.is_file(), (
        "rabbitmq container does not mount an enabled_plugins file from the repo")
    # Erlang term: [plugin_a,plugin_b].
    plugins = set(re.findall(r"[a-z_]+", path.read_text(encoding="utf-8")))
    for plugin in ("rabbitmq_management", "rabbitmq_federation", "rabbitmq_shovel"):
        assert plugin in plugins, "%s does not enable %s" % (path, plugin)
    ports = published_ports(spec)
    for port in (5672, 15672):
        assert port in ports, "rabbitmq port %d is not published (tests and nameko need it)" % port


@pytest.mark.parametrize("service", SERVICES)
def test_amqp_uri_points_at_the_compose_broker(service):
    uri = environment(container(service)).get("AMQP_URI") or ""
    host = urlsplit(uri).hostname
    assert host == "rabbitmq", "%s: AMQP_URI=%r should point at the rabbitmq container" % (
        service, uri)


def test_postgres_init_creates_every_database_compose_uses():
    spec = container("postgres")
    path = mounted_file(spec, "/docker-entrypoint-initdb.d/init.sql")
    assert path is not None and path.is_file(), "postgres does not mount deploy/postgres/init.sql"
    created = {
        name.strip('"').lower()
        for name in re.findall(r"CREATE\s+DATABASE\s+(\"?\w+\"?)", path.read_text(encoding="utf-8"), re.I)
    }
    urls = database_urls()
    assert urls, "no *_DATABASE_URL in docker-compose.yml"
    for (name, var), value in sorted(urls.items()):
        url = make_url(value)
        assert url.host == "postgres", "%s %s=%r is not on the postgres container" % (name, var, value)
        assert url.database in created, "%s %s uses database %r, which %s never creates (creates %s)" % (
            name, var, url.database, path.name, sorted(created))
    for service in SERVICES:
        own = urls.get((service, "%s_DATABASE_URL" % service.upper()))
        assert own and make_url(own).database == service, (
            "%s should use its own database %r, has %r" % (service, service, own))


@pytest.mark.parametrize("name", ["rabbitmq", "postgres"])
def test_services_wait_for_healthy_infrastructure(name):
    assert container(name).get("healthcheck", {}).get("test"), "%s has no healthcheck" % name
    for service in SERVICES:
        depends = container(service).get("depends_on") or {}
        condition = depends.get(name, {}).get("condition") if isinstance(depends, dict) else None
        assert condition == "service_healthy", (
            "%s should depend on %s with condition service_healthy (has %r)" % (service, name, depends))


def nameko_config(env: dict[str, str]) -> dict:
    """deploy/config.yaml as `nameko run` reads it: nameko's own CLI, in a subprocess
    (its YAML set-up patches yaml.SafeLoader process-wide)."""
    clean = {k: v for k, v in os.environ.items() if k not in node_config.ENV_VARS}
    clean.update(env)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "import sys; from nameko.cli.main import main; sys.exit(main())",
         "show-config", "--config", str(NAMEKO_CONFIG_PATH)],
        env=clean, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, "nameko show-config failed: %s" % done.stderr
    loaded = yaml.safe_load(done.stdout)
    assert isinstance(loaded, dict), "nameko show-config printed %r" % done.stdout
    return loaded


def test_nameko_config_covers_every_env_var(monkeypatch):
    config = nameko_config({})
    missing = sorted(set(node_config.ENV_VARS) - set(config) - set(CONFIG_KEY_EXCEPTIONS))
    assert not missing, "deploy/config.yaml does not map %s" % missing
    assert "LOGGING" in config, "deploy/config.yaml has no LOGGING section"

    # Unset variables fall back to shared/config.py's own defaults.
    for name in node_config.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in node_config.ENV_VARS if n.endswith("_DATABASE_URL")]:
        assert config.get(name) == "", (
            "deploy/config.yaml: %s should default to '' so the code's SQLite default "
            "applies, got %r" % (name, config.get(name)))
    for service in SERVICES:
        assert node_config.database_url(service, config).startswith("sqlite:///")
    assert not config.get("NODE_PARENT"), "NODE_PARENT should default to empty"
    expected = {
        "AMQP_URI": node_config.amqp_uri(),
        "NODE_ID": node_config.node_id(),
        # empty in the file: the code decides (district with a parent, else city)
        "NODE_LEVEL": "",
        "QINGLIAN_VAR": str(node_config.var_dir()),
        "QINGLIAN_TZ": node_config.timezone_name(),
    }
    for name, value in expected.items():
        if name in CONFIG_DEFAULT_EXCEPTIONS:
            continue
        assert config.get(name) == value, (
            "deploy/config.yaml defaults %s to %r, shared/config.py to %r"
            % (name, config.get(name), value))


def test_nameko_config_passes_values_through_as_strings():
    # "no" would become False, "8101" an int, "" None if values were YAML-parsed.
    env = {name: "value-of-%s" % name.lower() for name in node_config.ENV_VARS}
    env.update(NODE_ID="no", NODE_PARENT="", QINGLIAN_TZ="8101")
    config = nameko_config(env)
    for name, value in env.items():
        if name in CONFIG_KEY_EXCEPTIONS:
            continue
        assert config.get(name) == value, (
            "deploy/config.yaml turns %s=%r into %r" % (name, value, config.get(name)))


def test_nameko_builds_the_node_container():
    # each service's own <SERVICE>_MAX_WORKERS reaches nameko only through this class
    from nameko.containers import ServiceContainer, get_container_cls
    config = nameko_config({})
    assert config.get("SERVICE_CONTAINER_CLS") == node_config.CONTAINER_CLS, (
        "deploy/config.yaml should name SERVICE_CONTAINER_CLS: %s" % node_config.CONTAINER_CLS)
    cls = get_container_cls(config)
    assert issubclass(cls, ServiceContainer) and cls.__name__ == "NodeContainer"
