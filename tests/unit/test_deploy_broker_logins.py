"""The compose deployments run each service with its own broker login (issue 11, B7):
deploy/multinode/bootstrap.sh creates the users (`qinglian node broker-users`) and
deploy/entrypoint.sh, the image's ENTRYPOINT, gives a service started by compose's
`command: [nameko, run, ...]` its login. No Docker engine here: the scripts run in a
shell against stand-ins for `nameko` and `qinglian` that print what they were given."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
BOOTSTRAP = ROOT / "deploy" / "multinode" / "bootstrap.sh"
ADMIN_URI = "amqp://qinglian:change-me@rabbitmq-city:5672/%2F"


def _stand_in(bin_dir: Path, name: str) -> None:
    script = bin_dir / name
    script.write_text('#!/bin/sh\necho "%s $*" >> "$CALLS"\necho "AMQP_URI=$AMQP_URI" >> "$CALLS"\n'
                      % name, encoding="utf-8")
    script.chmod(0o755)


def _run(tmp_path: Path, script: Path, *args, **env) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("nameko", "qinglian"):
        _stand_in(bin_dir, name)
    calls = tmp_path / "calls.txt"
    calls.unlink(missing_ok=True)
    base = {"PATH": "%s:%s:/usr/bin:/bin" % (bin_dir, Path(sys.executable).parent),
            "CALLS": str(calls), "NODE_ID": "city", "AMQP_URI": ADMIN_URI,
            "QINGLIAN_VAR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT)}
    subprocess.run(["sh", str(script), *args], env={**base, **env}, check=True, timeout=60,
                   capture_output=True)
    return calls.read_text(encoding="utf-8").splitlines()


def _secret(tmp_path: Path, service: str, password: str) -> None:
    d = tmp_path / "var" / "city" / "broker"
    d.mkdir(parents=True, exist_ok=True)
    (d / ("%s.secret" % service)).write_text(password + "\n", encoding="utf-8")


COMMAND = ["nameko", "run", "--config", "deploy/config.yaml",
           "services.supervision.service:SupervisionService"]


def test_a_compose_command_runs_with_the_services_own_login(tmp_path):
    _secret(tmp_path, "supervision", "s3cret")
    _secret(tmp_path, "units", "other")
    calls = _run(tmp_path, ENTRYPOINT, *COMMAND)
    assert calls == ["nameko " + " ".join(COMMAND[1:]),
                     "AMQP_URI=amqp://ql-city-supervision:s3cret@rabbitmq-city:5672/%2F"]


def test_before_the_node_has_broker_users_the_given_login_is_used(tmp_path):
    calls = _run(tmp_path, ENTRYPOINT, *COMMAND)
    assert calls[1] == "AMQP_URI=" + ADMIN_URI


def test_the_image_default_still_starts_the_service_named_by_SERVICE(tmp_path):
    _secret(tmp_path, "units", "u-pass")
    calls = _run(tmp_path, ENTRYPOINT, SERVICE="units")
    assert calls == ["nameko run --config deploy/config.yaml services.units.service:UnitsService",
                     "AMQP_URI=amqp://ql-city-units:u-pass@rabbitmq-city:5672/%2F"]


def test_other_commands_run_as_given(tmp_path):
    _secret(tmp_path, "units", "u-pass")
    calls = _run(tmp_path, ENTRYPOINT, "qinglian", "node", "show")
    assert calls == ["qinglian node show", "AMQP_URI=" + ADMIN_URI]


def test_the_bootstrap_creates_the_broker_users_before_the_services_start(tmp_path):
    (tmp_path / "identities").mkdir()
    calls = _run(tmp_path, BOOTSTRAP, NODE_LEVEL="city", FEED_URL="http://exchange-city:8104/feed",
                 IDENTITIES_DIR=str(tmp_path / "identities"))
    commands = [c for c in calls if not c.startswith("AMQP_URI=")]
    assert commands[0].startswith("qinglian node init --node-id city --level city")
    assert "qinglian node broker-users" in commands
    assert (tmp_path / "identities" / "city.json").exists()
    # the services start after the bootstrap, through the image's ENTRYPOINT (no override)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in dockerfile
    compose = yaml.safe_load((ROOT / "deploy" / "multinode" / "docker-compose.yml").read_text())
    runs = {n: s for n, s in compose["services"].items() if s.get("command", [""])[0] == "nameko"}
    assert len(runs) == 12 and not any("entrypoint" in s for s in runs.values())
    assert all(s["depends_on"]["bootstrap-%s" % n.split("-", 1)[1]]["condition"]
               == "service_completed_successfully" for n, s in runs.items())
    assert os.access(ENTRYPOINT, os.X_OK)
