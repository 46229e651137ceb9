"""`qinglian backup` / `qinglian restore` of a whole node, on SQLite and on PostgreSQL,
run as an operator runs them: restored onto a fresh node, its logs verify, its read
models rebuilt equal the originals, its users, tokens, registry and key are the same,
and a restore that cannot be done writes nothing."""
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from services.units.domain import Unit
from shared import config, registry
from shared.auth import UserDirectory
from shared.db import drop_database, make_engine
from shared.uow import Runtime
from tests.fixtures import PG_SERVER

REPO = Path(__file__).resolve().parents[2]
DATABASES = ("NODE",) + tuple(s.upper() for s in registry.services())


def qinglian(env, *args):
    return subprocess.run([sys.executable, "-m", "tooling.cli", *args], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=300)


def node_env(tmp_path, name, kind, made):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("NODE_", "QINGLIAN_")) and not k.endswith("_DATABASE_URL")}
    e.update(NODE_ID="district-a", QINGLIAN_VAR=str(tmp_path / name))
    if kind == "postgresql":
        for db in DATABASES:  # named, not created: restore creates a missing database
            url = make_url(PG_SERVER).set(database="qlt_%s_%s" % (db.lower(), uuid.uuid4().hex[:8]))
            e["%s_DATABASE_URL" % db] = url.render_as_string(hide_password=False)
            made.append(e["%s_DATABASE_URL" % db])
    return e


@pytest.fixture
def made_databases():
    made = []
    yield made
    for url in made:
        drop_database(url)


def units_runtime(env):
    from services.units.application import app
    rt = Runtime(make_engine(config.database_url("units", env)), app.projections, "district-a", "units")
    rt.create_schema()
    return rt


def read_models(url) -> dict:
    """Every table but the kernel's bookkeeping, rows sorted; checkpoints by position."""
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            out = {}
            for table in inspect(c).get_table_names():
                rows = c.execute(text('SELECT * FROM "%s"' % table)).all()
                if table == "checkpoints":
                    rows = [(r.name, r.position) for r in rows]
                out[table] = sorted(map(repr, rows))
            return out
    finally:
        engine.dispose()


def create_pg(url):
    from tooling.backup import Database, _pg_create
    _pg_create(Database("x", url))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_whole_node_backup_restores_onto_a_fresh_node(tmp_path, kind, made_databases):
    original = node_env(tmp_path, "original", kind, made_databases)
    if kind == "postgresql":
        for db in DATABASES:
            create_pg(original["%s_DATABASE_URL" % db])
    assert qinglian(original, "node", "init", "--node-id", "district-a", "--parent", "city").returncode == 0
    added = qinglian(original, "user", "add", "li", "--name", "李四", "--role", "viewer")
    token = added.stdout.rsplit(": ", 1)[1].strip()
    assert qinglian(original, "node", "trust", "city", "--level", "city",
                    "--public-key", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").returncode == 0
    rt = units_runtime(original)
    with rt.unit_of_work() as uow:
        uow.save(Unit.register("qu", "区", "district_authority", "district", None))
    for i in range(40):
        with rt.unit_of_work() as uow:
            uow.save(Unit.register("u%d" % i, "单位%d" % i, "government_dept", "unit", "qu"))

    r = qinglian(original, "backup", "--to", str(tmp_path / "backups"))
    assert r.returncode == 0, r.stderr
    archive = next((tmp_path / "backups").glob("qinglian-district-a-*.tar.gz"))
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    at_backup = read_models(config.database_url("units", original))
    # the node goes on after the backup: the restore is of the moment of the backup
    with rt.unit_of_work() as uow:
        uow.save(Unit.register("late", "后来的单位", "government_dept", "unit", "qu"))
    rt.engine.dispose()

    fresh = node_env(tmp_path, "fresh", kind, made_databases)
    r = qinglian(fresh, "restore", str(archive))
    assert r.returncode == 0, r.stderr
    r = qinglian(fresh, "events", "verify", "--service", "units")
    assert r.returncode == 0 and "intact (41 events)" in r.stdout, r.stdout + r.stderr
    assert read_models(config.database_url("units", fresh)) == at_backup

    # read models rebuilt from the restored log equal the originals
    rt2 = units_runtime(fresh)
    with rt2.engine.begin() as c:
        c.execute(text("DELETE FROM unit_tree"))
    rt2.engine.dispose()
    r = qinglian(fresh, "projections", "rebuild", "--service", "units")
    assert r.returncode == 0, r.stderr
    rebuilt = read_models(config.database_url("units", fresh))
    # (a rebuild records its own checkpoints; everything else is as it was)
    assert {k: v for k, v in rebuilt.items() if k != "checkpoints"} == \
        {k: v for k, v in at_backup.items() if k != "checkpoints"}
    assert rebuilt["unit_tree"] and len(rebuilt["unit_tree"]) == 41

    # same key, same users and tokens, same registry
    key = Path(fresh["QINGLIAN_VAR"]) / "district-a" / "keys" / "node.key"
    assert key.read_bytes() == (Path(original["QINGLIAN_VAR"]) / "district-a" / "keys" / "node.key").read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    users = UserDirectory(make_engine(config.node_database_url(fresh)), "district-a")
    assert users.authenticate(token).user_id == "li"
    users.engine.dispose()
    ident = qinglian(fresh, "federation", "identity")
    assert ident.returncode == 0 and '"level": "district"' in ident.stdout
    assert read_models(config.node_database_url(fresh))["nodes"] == \
        read_models(config.node_database_url(original))["nodes"]

    # onto a node that holds data: refused, one line, nothing changed
    before = read_models(config.database_url("units", fresh))
    r = qinglian(fresh, "restore", str(archive))
    assert r.returncode == 1 and "already holds data" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert read_models(config.database_url("units", fresh)) == before


def test_a_restore_that_cannot_be_done_writes_nothing(tmp_path, made_databases):
    original = node_env(tmp_path, "original", "sqlite", made_databases)
    assert qinglian(original, "node", "init", "--node-id", "district-a", "--parent", "city").returncode == 0
    rt = units_runtime(original)
    with rt.unit_of_work() as uow:
        uow.save(Unit.register("qu", "区", "district_authority", "district", None))
    rt.engine.dispose()
    assert qinglian(original, "backup", "--to", str(tmp_path / "b")).returncode == 0
    archive = next((tmp_path / "b").glob("*.tar.gz"))

    # a damaged archive: one member replaced
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(damaged, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "db/units.sqlite":
                data = data[:-1] + bytes([data[-1] ^ 1])
            import io
            dst.addfile(m, io.BytesIO(data))
    fresh = node_env(tmp_path, "fresh", "sqlite", made_databases)
    r = qinglian(fresh, "restore", str(damaged))
    assert r.returncode == 1 and "units" in r.stderr and "damaged" in r.stderr
    assert not Path(fresh["QINGLIAN_VAR"]).exists()

    # another node's backup
    r = qinglian(dict(fresh, NODE_ID="district-b"), "restore", str(archive))
    assert r.returncode == 1 and "district-a" in r.stderr and "district-b" in r.stderr
    # a backup of SQLite onto a node configured for PostgreSQL
    url = make_url(PG_SERVER).set(database="qlt_units_%s" % uuid.uuid4().hex[:8])
    r = qinglian(dict(fresh, UNITS_DATABASE_URL=url.render_as_string(hide_password=False)),
                 "restore", str(archive))
    assert r.returncode == 1 and "configured for postgresql" in r.stderr
    # not a backup at all
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    r = qinglian(fresh, "restore", str(junk))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert not Path(fresh["QINGLIAN_VAR"]).exists()
