"""``qinglian backup`` / ``qinglian restore``: a whole node in one archive.

What a node is, on disk: one database per service (event log, relay and consumer
checkpoints, read models), the node database (users, hashed tokens, sessions, the
registry of trusted nodes and this node's own entry) and the signing key. The archive
(``qinglian-<node>-<UTC time>.tar.gz``, mode 0600: it holds the private key) has

    manifest.json         node id, level, parent; per database its kind, file, SHA-256
                          and event count; per key file its SHA-256
    db/<name>.sqlite      SQLite: the online backup API (a consistent copy while the
                          services keep writing)
    db/<name>.pgdump      PostgreSQL: ``pg_dump --format=custom`` of one snapshot, the
                          same snapshot the event count was read from
    keys/node.key

Each database is consistent in itself, and that is all a node needs: the services
share no transaction, and every cross-service (and cross-node) flow is at-least-once
with deduplication, so a backup taken while the node runs restores to a node that
catches up like one that was merely stopped.

``restore`` checks everything before writing anything (archive intact, same node id,
same kind of database as configured, targets empty), then restores every database and
the key, and checks each event log (count as in the manifest, hash chain intact).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from shared import config, registry

FORMAT = 1


class BackupError(Exception):
    """Why a backup or a restore cannot be done (one line for the operator)."""


@dataclass
class Database:
    name: str  # "node" or a service
    url: str

    @property
    def kind(self) -> str:
        backend = make_url(self.url).get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise BackupError("%s: cannot back up a %s database" % (self.name, backend))
        return backend

    @property
    def path(self) -> Path:
        return Path(make_url(self.url).database)

    @property
    def has_events(self) -> bool:
        return self.name != "node"

    def libpq(self) -> str:
        """The URL as pg_dump/pg_restore read it (no SQLAlchemy driver suffix)."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


def node_databases(cfg: dict | None = None) -> list[Database]:
    return [Database("node", config.node_database_url(cfg))] + [
        Database(s, config.database_url(s, cfg)) for s in registry.services()]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError("%s not found: install the postgresql-client package" % name)
    return found


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError("%s failed: %s" % (what, " ".join(done.stderr.split())[:400]))


def _sqlite_copy(src: Path, dst: Path) -> None:
    """The online backup API: a consistent copy even while writers go on."""
    source = sqlite3.connect("file:%s?mode=ro" % src, uri=True)
    target = sqlite3.connect(str(dst))
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _sqlite_events(path: Path) -> int:
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return c.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    finally:
        c.close()


def _pg_dump(db: Database, out: Path) -> int | None:
    """Dump one snapshot and count the events in that same snapshot."""
    import psycopg2
    conn = psycopg2.connect(db.libpq())
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            events = None
            if db.has_events:
                cur.execute("SELECT to_regclass('events') IS NOT NULL")
                if cur.fetchone()[0]:
                    cur.execute("SELECT coalesce(max(position), 0) FROM events")
                    events = cur.fetchone()[0]
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  "--snapshot=%s" % snapshot, "--file=%s" % out, "--dbname=%s" % db.libpq()],
                 "pg_dump of %s" % db.name)
        conn.rollback()
        return events
    finally:
        conn.close()


# -- backup --------------------------------------------------------------------------------
def backup(out_dir: str | Path, cfg: dict | None = None, progress=print) -> Path:
    """Write the node's archive into ``out_dir``; returns its path."""
    from shared.federation.keys import node_key_path
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    node = config.node_id(cfg)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    archive = out_dir / ("qinglian-%s-%s.tar.gz" % (node, stamp))
    manifest = {"format": FORMAT, "node_id": node, "created_at": datetime.now(timezone.utc).isoformat(),
                "databases": {}, "keys": {}}
    with tempfile.TemporaryDirectory(prefix=".qinglian-backup-", dir=out_dir) as tmp:
        work = Path(tmp)
        (work / "db").mkdir()
        for db in node_databases(cfg):
            kind = db.kind
            if kind == "sqlite":
                if not db.path.exists():
                    progress("%-12s no database yet (%s): nothing to back up" % (db.name, db.path))
                    continue
                member = "db/%s.sqlite" % db.name
                _sqlite_copy(db.path, work / member)
                events = _sqlite_events(work / member) if db.has_events and _has_events_table(work / member) else None
            else:
                member = "db/%s.pgdump" % db.name
                events = _pg_dump(db, work / member)
            manifest["databases"][db.name] = {"kind": kind, "file": member,
                                              "sha256": _sha256(work / member), "events": events}
            progress("%-12s %s%s" % (db.name, kind, ", %d events" % events if events is not None else ""))
        key = node_key_path(cfg)
        if key.exists():
            (work / "keys").mkdir()
            shutil.copy2(key, work / "keys" / key.name)
            manifest["keys"][key.name] = _sha256(key)
        else:
            progress("no signing key at %s (node init not run?)" % key)
        manifest.update(_identity(work, manifest))
        (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        partial = archive.with_name(archive.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(work / "manifest.json", "manifest.json")
            for member in sorted(p for p in work.rglob("*") if p.is_file() and p.name != "manifest.json"):
                tar.add(member, str(member.relative_to(work)))
        os.replace(partial, archive)
    return archive


def _has_events_table(path: Path) -> bool:
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='events'").fetchone() is not None
    finally:
        c.close()


def _identity(work: Path, manifest: dict) -> dict:
    """Level and parent from the registry's own entry, when the copy is SQLite (for
    the operator reading the manifest; restore does not depend on it)."""
    node = manifest["databases"].get("node")
    if not node or node["kind"] != "sqlite":
        return {}
    c = sqlite3.connect("file:%s?mode=ro" % (work / node["file"]), uri=True)
    try:
        row = c.execute("SELECT level, parent FROM nodes WHERE node_id = ?",
                        (manifest["node_id"],)).fetchone()
    except sqlite3.Error:
        return {}
    finally:
        c.close()
    return {"level": row[0], "parent": row[1]} if row else {}


# -- restore -------------------------------------------------------------------------------
def read_manifest(tar: tarfile.TarFile) -> dict:
    try:
        manifest = json.load(tar.extractfile("manifest.json"))
    except (KeyError, ValueError) as exc:
        raise BackupError("not a qinglian backup (no readable manifest.json): %s" % exc) from None
    if manifest.get("format") != FORMAT:
        raise BackupError("backup format %r, this version reads %d" % (manifest.get("format"), FORMAT))
    return manifest


def _empty(db: Database) -> bool:
    from shared.db import make_engine
    if db.kind == "sqlite" and not db.path.exists():
        return True
    engine = make_engine(db.url)
    try:
        with engine.connect() as c:
            return not inspect(c).get_table_names()
    finally:
        engine.dispose()


def _pg_exists(db: Database) -> bool:
    import psycopg2
    try:
        psycopg2.connect(db.libpq()).close()
        return True
    except psycopg2.OperationalError as exc:
        if "does not exist" in str(exc):
            return False
        raise BackupError("%s: cannot reach %s: %s" % (db.name, make_url(db.url).render_as_string(),
                                                        " ".join(str(exc).split()))) from None


def restore(archive: str | Path, cfg: dict | None = None, force: bool = False, progress=print) -> dict:
    """Restore the archive onto this node; returns the manifest. Everything is checked
    first, so a refused restore writes nothing."""
    from shared.federation.keys import node_key_path
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError("no backup at %s" % archive)
    with tempfile.TemporaryDirectory(prefix=".qinglian-restore-") as tmp:
        work = Path(tmp)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                manifest = read_manifest(tar)
                tar.extractall(work, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupError("cannot read %s: %s" % (archive, exc)) from None
        node = config.node_id(cfg)
        if manifest["node_id"] != node:
            raise BackupError("the backup is of node %s, this node is %s (set NODE_ID=%s to restore it here)"
                              % (manifest["node_id"], node, manifest["node_id"]))
        for name, item in list(manifest["databases"].items()) + [
                ("key " + k, {"file": "keys/" + k, "sha256": v}) for k, v in manifest["keys"].items()]:
            path = work / item["file"]
            if not path.is_file() or _sha256(path) != item["sha256"]:
                raise BackupError("%s in %s is damaged (SHA-256 differs from the manifest)" % (name, archive))

        targets = {db.name: db for db in node_databases(cfg)}
        for name, item in manifest["databases"].items():
            db = targets.get(name)
            if db is None:
                raise BackupError("the backup has a %s database this version has no service for" % name)
            if db.kind != item["kind"]:
                raise BackupError("%s: the backup is %s, this node is configured for %s (%s_DATABASE_URL)"
                                  % (name, item["kind"], db.kind, "NODE" if name == "node" else name.upper()))
            exists = db.kind == "sqlite" or _pg_exists(db)
            if exists and not force and not _empty(db):
                raise BackupError("%s: %s already holds data: restore onto a fresh node (or --force "
                                  "to replace it)" % (name, _where(db)))
        for name, db in targets.items():
            if name not in manifest["databases"] and not force and not (
                    db.kind == "postgresql" and not _pg_exists(db)) and not _empty(db):
                raise BackupError("%s: %s holds data the backup has none of: restore onto a fresh "
                                  "node (or --force)" % (name, _where(db)))
        key = node_key_path(cfg)
        if manifest["keys"] and key.exists() and not force and _sha256(key) != manifest["keys"].get(key.name):
            raise BackupError("this node already has a different signing key at %s (--force replaces it)" % key)

        # -- from here on, writing
        for name, item in manifest["databases"].items():
            db, source = targets[name], work / item["file"]
            if db.kind == "sqlite":
                db.path.parent.mkdir(parents=True, exist_ok=True)
                partial = db.path.with_name(db.path.name + ".restoring")
                partial.unlink(missing_ok=True)
                _sqlite_copy(source, partial)
                for suffix in ("-wal", "-shm"):  # a replaced file's journal must not outlive it
                    Path(str(db.path) + suffix).unlink(missing_ok=True)
                os.replace(partial, db.path)
            else:
                if not _pg_exists(db):
                    _pg_create(db)
                elif force:
                    _pg_clear(db)
                _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                      "--single-transaction", "--dbname=%s" % db.libpq(), str(source)],
                     "pg_restore of %s" % name)
            progress("%-12s restored (%s)" % (name, _where(db)))
        for name in manifest["keys"]:
            key.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(key.parent, 0o700)
            partial = key.with_name(key.name + ".restoring")
            shutil.copyfile(work / "keys" / name, partial)
            os.chmod(partial, 0o600)
            os.replace(partial, key)
            progress("%-12s restored (%s)" % ("key", key))

    problems = check(manifest, cfg)
    if problems:
        raise BackupError("restored, but: %s" % "; ".join(problems))
    return manifest


def _where(db: Database) -> str:
    return str(db.path) if db.kind == "sqlite" else make_url(db.url).render_as_string()


def _pg_create(db: Database) -> None:
    import psycopg2
    name = make_url(db.url).database
    conn = psycopg2.connect(make_url(db.libpq()).set(database="postgres").render_as_string(hide_password=False))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE DATABASE "%s"' % name.replace('"', '""'))
    finally:
        conn.close()


def _pg_clear(db: Database) -> None:
    from shared.db import make_engine
    engine = make_engine(db.url)
    try:
        with engine.begin() as c:
            c.execute(text("DROP SCHEMA public CASCADE"))
            c.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def check(manifest: dict, cfg: dict | None = None) -> list[str]:
    """Each restored event log holds what the manifest says and its hash chain is intact."""
    from shared.db import make_engine
    from shared.uow import Runtime
    problems = []
    for name, item in manifest["databases"].items():
        if item.get("events") is None:
            continue
        rt = Runtime(make_engine(config.database_url(name, cfg)), registry.application(name).projections,
                     config.node_id(cfg), name)
        try:
            with rt.read() as conn:
                head = rt.store.head(conn)
                result = rt.store.verify(conn)
        finally:
            rt.engine.dispose()
        if head != item["events"]:
            problems.append("%s has %d events, the backup %d" % (name, head, item["events"]))
        if not result.ok:
            problems.append("%s: hash chain broken at position %s (%s)" % (name, result.first_bad_position,
                                                                          result.reason))
    return problems


# -- console -------------------------------------------------------------------------------
def cmd_backup(args) -> int:
    import sys
    try:
        archive = backup(args.to or config.var_dir() / "backups")
    except BackupError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    print("backup of node %s written to %s (mode 0600: it holds the node's private key)"
          % (config.node_id(), archive))
    return 0


def cmd_restore(args) -> int:
    import sys
    try:
        manifest = restore(args.archive, force=args.force)
    except BackupError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 1
    print("node %s restored from %s (taken %s); event logs verified. Start its services: they "
          "catch up with the broker and their peers' feeds." % (manifest["node_id"], args.archive,
                                                                manifest["created_at"]))
    return 0


def register(root) -> None:
    p = root.add_parser("backup", help="the whole node (databases, keys, registry) into one archive")
    p.add_argument("--to", help="folder for the archive (default: <QINGLIAN_VAR>/backups)")
    p.set_defaults(func=cmd_backup)
    p = root.add_parser("restore", help="a node from a backup archive, onto a fresh node (services stopped)")
    p.add_argument("archive")
    p.add_argument("--force", action="store_true",
                   help="replace databases that already hold data, and a different key")
    p.set_defaults(func=cmd_restore)
