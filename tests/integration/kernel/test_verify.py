"""``qinglian events verify`` on the units log, on SQLite and PostgreSQL (issue 11, D14):
it only reads (a wrong path or database name is an error and creates nothing), and a
log whose last rows were deleted is caught by the checkpoints of the projections that
had seen them - which the hash chain alone cannot show."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from services.units.domain import Unit
from shared.db import make_engine
from shared.uow import Runtime

REPO = Path(__file__).resolve().parents[3]
PG = make_url(os.environ.get("QINGLIAN_TEST_PG",
                             "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"))


def qinglian(env, *args):
    return subprocess.run([sys.executable, "-m", "tooling.cli", *args], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)


def _pg_admin():
    conn = psycopg2.connect(host=PG.host, port=PG.port or 5432, user=PG.username,
                            password=PG.password, dbname=PG.database or "postgres")
    conn.autocommit = True
    return conn


def _pg(sql: str, *args):
    """One statement outside any transaction (CREATE/DROP DATABASE need that)."""
    conn = _pg_admin()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def _pg_exists(name: str) -> bool:
    return _pg("SELECT 1 FROM pg_database WHERE datname = %s", name) is not None


@pytest.fixture(params=["sqlite", "postgresql"])
def units_db(request, tmp_path):
    """(environment, database URL) of a units log with 20 units in it."""
    env = dict(os.environ, QINGLIAN_VAR=str(tmp_path / "var"), NODE_ID="district-a")
    made = None
    if request.param == "sqlite":
        url = "sqlite:///%s/district-a/units.db" % env["QINGLIAN_VAR"]
    else:
        made = "qlt_verify_%s" % uuid.uuid4().hex[:8]
        _pg('CREATE DATABASE "%s"' % made)
        url = PG.set(database=made).render_as_string(hide_password=False)
    env["UNITS_DATABASE_URL"] = url
    from services.units.application import app
    rt = Runtime(make_engine(url), app.projections, "district-a", "units")
    rt.create_schema()
    with rt.unit_of_work() as uow:
        uow.save(Unit.register("qu", "区", "district_authority", "district", None))
    for i in range(19):
        with rt.unit_of_work() as uow:
            uow.save(Unit.register("u%d" % i, "单位%d" % i, "government_dept", "unit", "qu"))
    try:
        yield env, rt
    finally:
        rt.engine.dispose()
        if made:
            _pg('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % made)


def test_a_deleted_last_row_is_caught_by_the_checkpoints(units_db):
    env, rt = units_db
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 0 and "intact (20 events)" in r.stdout, r.stdout + r.stderr
    with rt.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE position = 20"))
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "TAMPERED at position 20" in r.stdout and "were removed" in r.stdout


def test_a_wrong_path_or_database_is_an_error_and_creates_nothing(tmp_path):
    env = dict(os.environ, QINGLIAN_VAR=str(tmp_path / "nowhere"), NODE_ID="district-a")
    env.pop("UNITS_DATABASE_URL", None)
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 2 and "不存在" in r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "nowhere").exists()
    missing = "qlt_absent_%s" % uuid.uuid4().hex[:8]
    env["UNITS_DATABASE_URL"] = PG.set(database=missing).render_as_string(hide_password=False)
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 2 and "database:" in r.stderr, r.stdout + r.stderr
    assert not _pg_exists(missing)
    # a database that exists but holds no event log is not one either
    env["UNITS_DATABASE_URL"] = PG.render_as_string(hide_password=False)
    r = qinglian(env, "events", "verify", "--service", "units")
    assert r.returncode == 2 and "没有事件日志" in r.stderr, r.stdout + r.stderr
