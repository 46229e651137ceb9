"""The `qinglian` console, run as an operator would run it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from services.units.domain import Unit
from shared.db import make_engine
from shared.uow import Runtime

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, QINGLIAN_VAR=str(tmp_path / "var"), NODE_ID="district-a")
    e.pop("UNITS_DATABASE_URL", None)
    return e


def qinglian(env, *args):
    return subprocess.run([sys.executable, "-m", "tooling.cli", *args], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)


def units_runtime(env):
    from services.units.application import app
    url = "sqlite:///%s/district-a/units.db" % env["QINGLIAN_VAR"]
    rt = Runtime(make_engine(url), app.projections, "district-a", "units")
    rt.create_schema()
    return rt


def test_node_init_creates_keys_registry_and_first_admin(env):
    r = qinglian(env, "node", "init", "--node-id", "district-a", "--level", "district", "--parent", "city")
    assert r.returncode == 0, r.stderr
    assert "token (shown once): ql_" in r.stdout
    key = Path(env["QINGLIAN_VAR"]) / "district-a" / "keys" / "node.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    # idempotent: a second init keeps the key and does not add a second admin
    again = qinglian(env, "node", "init", "--node-id", "district-a", "--level", "district", "--parent", "city")
    assert again.returncode == 0 and "token" not in again.stdout
    assert r.stdout.split("public key: ")[1].split()[0] == again.stdout.split("public key: ")[1].split()[0]


def test_user_add_rejects_bad_input_and_issues_tokens(env):
    bad = qinglian(env, "user", "add", "zhang", "--name", "张三", "--role", "unit-admin")
    assert bad.returncode == 2 and "unit_scope" in bad.stderr
    ok = qinglian(env, "user", "add", "zhang", "--name", "张三", "--role", "unit-admin", "--unit-scope", "xj")
    assert ok.returncode == 0 and "ql_" in ok.stdout
    assert qinglian(env, "user", "add", "zhang", "--name", "张三", "--role", "viewer").returncode == 2


def test_events_verify_and_projection_rebuild(env):
    rt = units_runtime(env)
    with rt.unit_of_work() as uow:
        uow.save(Unit.register("qu", "区", "district_authority", "district", None))
    for i in range(30):
        with rt.unit_of_work() as uow:
            uow.save(Unit.register("u%d" % i, "单位%d" % i, "government_dept", "unit", "qu"))
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 0 and "intact (31 events)" in r.stdout

    with rt.engine.begin() as c:
        c.execute(text("DELETE FROM unit_tree"))
    r = qinglian(env, "projections", "rebuild", "--service", "units", "--projection", "unit_tree")
    assert r.returncode == 0 and "rebuilt from 31 events" in r.stdout
    with rt.read() as c:
        assert c.execute(text("SELECT count(*) FROM unit_tree")).scalar() == 31

    out = Path(env["QINGLIAN_VAR"]) / "asof.db"
    r = qinglian(env, "projections", "rebuild", "--service", "units", "--as-of", "11", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with make_engine("sqlite:///%s" % out).connect() as c:
        assert c.execute(text("SELECT count(*) FROM unit_tree")).scalar() == 11

    with rt.engine.begin() as c:
        c.execute(text("UPDATE events SET payload = '{}' WHERE position = 17"))
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 1 and "TAMPERED at position 17" in r.stdout


def test_run_says_clearly_when_no_broker_answers(env):
    env["AMQP_URI"] = "amqp://guest:guest@127.0.0.1:1/"
    r = qinglian(env, "run")
    assert r.returncode == 1
    assert r.stdout.strip().count("\n") == 0  # one clear line
    assert "RabbitMQ is not answering" in r.stdout and "rabbitmq-server -detached" in r.stdout


def test_user_token_issue_list_revoke_and_disable(env):
    from shared.auth import UserDirectory
    from shared.errors import Unauthenticated
    assert qinglian(env, "user", "add", "li", "--name", "李四", "--role", "viewer").returncode == 0
    issued = qinglian(env, "user", "token", "issue", "li", "--label", "ci", "--days", "7")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    listed = qinglian(env, "user", "token", "list", "li")
    assert listed.returncode == 0 and token not in listed.stdout
    ci_line = next(line for line in listed.stdout.splitlines() if line.endswith("ci"))
    assert " active " in ci_line
    token_id = ci_line.split()[0]
    users = UserDirectory(make_engine("sqlite:///%s/district-a/node.db" % env["QINGLIAN_VAR"]), "district-a")
    assert users.authenticate(token).user_id == "li"
    # neither an id nor --all; a malformed id; an unknown user: one-line errors, exit 2
    for args in (["li"], ["li", "zz"], ["nobody", "--all"], ["li", token_id, "--all"]):
        bad = qinglian(env, "user", "token", "revoke", *args)
        assert bad.returncode == 2 and bad.stderr.startswith("error:"), (args, bad.stderr)
    assert users.authenticate(token).user_id == "li"
    revoked = qinglian(env, "user", "token", "revoke", "li", token_id)
    assert revoked.returncode == 0 and "1 token" in revoked.stdout
    with pytest.raises(Unauthenticated):
        users.authenticate(token)
    assert " revoked " in qinglian(env, "user", "token", "list", "li").stdout
    other = qinglian(env, "user", "token", "issue", "li").stdout.strip()
    assert users.authenticate(other).user_id == "li"
    assert qinglian(env, "user", "disable", "li").returncode == 0
    with pytest.raises(Unauthenticated):
        users.authenticate(other)
    assert qinglian(env, "user", "enable", "li").returncode == 0
    assert users.authenticate(other).user_id == "li"
    users.engine.dispose()


def test_events_dead_letters_lists_what_consumers_gave_up_on(env):
    from shared.store import dead_letters
    rt = units_runtime(env)
    with rt.engine.begin() as c:
        c.execute(dead_letters.insert().values(consumer="units.example", event_id="e-1", attempts=30,
                                               body='{"type": "X"}', error="RuntimeError('boom')",
                                               failed_at_us=1_800_000_000_000_000))
    r = qinglian(env, "events", "dead-letters", "--service", "units", "--body")
    assert r.returncode == 0, r.stderr
    assert "units: 1 dead letter(s)" in r.stdout
    assert "units.example" in r.stdout and "e-1" in r.stdout and "boom" in r.stdout
    assert '{"type": "X"}' in r.stdout


def test_node_broker_users_creates_and_removes_each_services_login(env, vhost):
    import uuid

    import requests

    from tests.fixtures import RABBIT_API
    node_id = "bu-%s" % uuid.uuid4().hex[:8]
    env.update(NODE_ID=node_id, AMQP_URI=vhost["uri"], RABBITMQ_API_URL=RABBIT_API.removesuffix("/api"))

    def permissions():
        r = requests.get("%s/vhosts/%s/permissions" % (RABBIT_API, vhost["name"]), auth=("guest", "guest"),
                         timeout=10)
        return {p["user"]: p for p in r.json() if p["user"].startswith("ql-")}
    made = qinglian(env, "node", "broker-users")
    try:
        assert made.returncode == 0, made.stderr
        perms = permissions()
        assert set(perms) == {"ql-%s-%s" % (vhost["name"], s) for s in
                              ("console", "units", "supervision", "education", "exchange")}
        assert perms["ql-%s-units" % vhost["name"]]["write"].startswith("^(units\\.events|")
        secrets = sorted(p.name for p in (Path(env["QINGLIAN_VAR"]) / node_id / "broker").iterdir())
        assert secrets == sorted("%s.secret" % s for s in ("console", "units", "supervision",
                                                           "education", "exchange"))
    finally:
        removed = qinglian(env, "node", "broker-users", "--remove")
    assert removed.returncode == 0, removed.stderr
    assert permissions() == {}
