"""The console as an operator meets it: README's commands work as written, and every
error is one clear line on stderr (never a traceback)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLOSED_PORT = 1  # nothing listens on port 1


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("NODE_", "QINGLIAN_")) and not k.endswith("_DATABASE_URL")}
    e["QINGLIAN_VAR"] = str(tmp_path / "var")
    return e


def qinglian(env, *args):
    return subprocess.run([sys.executable, "-m", "tooling.cli", *args], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"`(\.venv/bin/qinglian [^`]+)`", text)
    found += [line.split("#")[0].strip() for line in text.splitlines()
              if line.startswith(".venv/bin/qinglian ")]
    return list(dict.fromkeys(found))


def test_readme_has_qinglian_commands():
    assert ".venv/bin/qinglian node init --node-id local" in readme_commands()


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_works_word_for_word(env, command):
    # on the embedded defaults, as README says `make run` uses them (no NODE_* set)
    r = qinglian(env, *command.split()[1:])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def assert_one_line_error(r, code=None):
    assert r.returncode != 0
    if code is not None:
        assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr.strip()


def test_district_without_parent_is_one_line_and_writes_nothing(env):
    r = qinglian(env, "node", "init", "--node-id", "local", "--level", "district")
    line = assert_one_line_error(r, 2)
    assert "--parent" in line and "区级节点需要上级节点" in line
    assert not Path(env["QINGLIAN_VAR"]).exists()  # no key, no database
    r = qinglian(env, "node", "init", "--node-id", "city", "--level", "city", "--parent", "x")
    assert "市级节点没有上级节点" in assert_one_line_error(r, 2)
    assert not Path(env["QINGLIAN_VAR"]).exists()


@pytest.mark.parametrize("args, extra_env, says", [
    (["node", "init"], {}, "required: --node-id"),
    (["events", "verify", "--service", "nope"], {}, "invalid choice"),
    (["events", "verify", "--service", "units"],
     {"UNITS_DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:%d/x" % CLOSED_PORT},
     "database:"),
    (["projections", "rebuild", "--service", "units", "--as-of", "not-a-date"], {}, "not-a-date"),
    (["federation", "link", "--peer", "city", "--peer-amqp", "amqp://x/"], {}, "node init"),
    (["federation", "cluster-name", "--api", "http://127.0.0.1:%d" % CLOSED_PORT], {},
     "127.0.0.1:%d" % CLOSED_PORT),
    (["federation", "cluster-name"], {"RABBITMQ_API_URL": "http://127.0.0.1:%d" % CLOSED_PORT},
     "127.0.0.1:%d" % CLOSED_PORT),
])
def test_errors_are_one_clear_line(env, args, extra_env, says):
    env.update(extra_env)
    line = assert_one_line_error(qinglian(env, *args))
    assert says in line, line


def test_a_duplicate_user_is_one_line(env):
    assert qinglian(env, "user", "add", "li", "--name", "李四", "--role", "viewer").returncode == 0
    assert_one_line_error(qinglian(env, "user", "add", "li", "--name", "李四", "--role", "viewer"), 2)
