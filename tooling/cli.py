"""``qinglian``: the node operator's console.

    qinglian node init --node-id district-a --level district --parent city
    qinglian user add zhang --name 张三 --role unit-admin --unit-scope x-bureau
    qinglian events verify [--service units]
    qinglian projections rebuild --service units [--projection unit_tree] [--as-of 2026-10-01T00:00:00+08:00]
    qinglian contracts generate [--check]   # contracts/ (event schemas, AsyncAPI, OpenAPI) from the code
    qinglian run                      # every service of this node, as `make run` does
    qinglian demo [--check]           # a city and two districts on this machine (`make demo`)

Settings come from the environment (see ``shared.config.ENV_VARS``); the node's services
come from the registry (``shared.registry``). The commands that concern other nodes are
in ``tooling.federation_cli``, backup and restore in ``tooling.backup`` (each adds its
subcommands with ``register``), the demo in ``tooling.demo``. Without the installed
``qinglian`` script, ``python -m tooling.cli ...`` runs the same commands.
"""
from __future__ import annotations

import warnings

# nameko 2.14 needs eventlet, which announces on import that it is deprecated; an
# operator's console has no use for that notice (only that exact warning is hidden)
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from shared import config, registry
from shared.logs import QUIET_WARNINGS

REPO = Path(__file__).resolve().parent.parent


def _progress(label: str, total: int):
    width = 30
    start = time.monotonic()

    def show(done: int):
        frac = min(1.0, done / total) if total else 1.0
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        rate = done / max(time.monotonic() - start, 1e-6)
        sys.stderr.write("\r%s [%s] %d/%d  %.0f events/s" % (label, bar, done, total, rate))
        sys.stderr.flush()
        if done >= total:
            sys.stderr.write("\n")
    return show


def _runtime(service: str):
    from shared.db import make_engine
    from shared.uow import Runtime
    app = registry.application(service)
    rt = Runtime(make_engine(config.database_url(service)), app.projections,
                 config.node_id(), service)
    rt.create_schema()
    return rt


def _users():
    from shared.auth import UserDirectory
    from shared.db import make_engine
    users = UserDirectory(make_engine(config.node_database_url()), config.node_id(), config.token_days())
    users.create_schema()
    return users


# -- node ------------------------------------------------------------------------------------
def cmd_node_init(args) -> int:
    from shared.errors import BadInput
    from shared.federation.keys import identity, init_this_node
    # checked before anything is written (a key made for a node that cannot exist)
    parent = args.parent or config.node_parent()
    level = args.level or ("district" if parent else config.node_level())
    if level == "district" and not parent:
        raise BadInput("区级节点需要上级节点：请加 --parent <市级节点编号> "
                       "(a district needs its parent city; a stand-alone node is --level city)")
    if level == "city" and args.parent:
        raise BadInput("市级节点没有上级节点：请去掉 --parent (a city has no parent)")
    args.level, args.parent = level, parent if level == "district" else None
    os.environ["NODE_ID"] = args.node_id
    os.environ["NODE_LEVEL"] = args.level
    if args.parent:
        os.environ["NODE_PARENT"] = args.parent
    init_this_node(None, args.level, args.parent, args.feed_url)
    me = identity(None)
    users = _users()
    token = None
    if users.get(args.admin_user) is None:
        users.add_user(args.admin_user, args.admin_name, ["node-admin"])
        token = users.issue_token(args.admin_user, "first admin")
    if not users.has_password(args.admin_user):
        _set_password(users, args.admin_user, args)
    print("node %s (%s%s) initialised" % (args.node_id, args.level,
                                          ", parent %s" % args.parent if args.parent else ""))
    print("public key: %s" % me["public_key"])
    if token:
        print("admin %s token (shown once): %s" % (args.admin_user, token))
    print("peers trust this node with:")
    print("  qinglian node trust %s --level %s%s --public-key %s%s" % (
        me["node_id"], me["level"], " --parent %s" % me["parent"] if me["parent"] else "",
        me["public_key"], " --feed-url %s" % me["feed_url"] if me["feed_url"] else ""))
    print("export NODE_ID=%s NODE_LEVEL=%s%s" % (args.node_id, args.level,
                                                 " NODE_PARENT=%s" % args.parent if args.parent else ""))
    return 0


def _read_password(args, user_id: str) -> str | None:
    """The console password from stdin (--password-stdin) or typed twice at a terminal;
    None when neither is possible (no terminal): the user then has no password yet."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    import getpass
    first = getpass.getpass("%s 的控制台密码: " % user_id)
    if getpass.getpass("再输一次: ") != first:
        from shared.errors import BadInput
        raise BadInput("两次输入的密码不一致 (the passwords differ)")
    return first


def _set_password(users, user_id: str, args) -> None:
    password = _read_password(args, user_id)
    if password is None:
        print("no console password set for %s (use --password-stdin, or "
              "`qinglian user passwd %s` at a terminal)" % (user_id, user_id))
        return
    users.set_password(user_id, password)
    print("console password set for %s" % user_id)


def cmd_node_broker_users(args) -> int:
    from shared import brokerusers
    from shared.federation.broker import BrokerAdmin
    admin = BrokerAdmin.for_node(config.amqp_uri(), args.api or config.rabbit_api_url())
    try:
        if args.remove:
            brokerusers.remove(admin)
            print("broker users of node %s removed" % config.node_id())
            return 0
        for service, uri in brokerusers.provision(admin).items():
            print("%-12s %s" % (service, brokerusers.user_name(None, service)))
    finally:
        admin.close()
    print("`qinglian run` starts each service with its own login; give the same to any "
          "other launcher (AMQP_URI per process, passwords in %s)"
          % (config.var_dir() / config.node_id() / "broker"))
    return 0


def cmd_user_add(args) -> int:
    users = _users()
    users.add_user(args.user_id, args.name, args.role, args.unit_scope)
    _set_password(users, args.user_id, args)
    print("user %s added; token (shown once): %s" % (args.user_id, users.issue_token(args.user_id)))
    return 0


def cmd_user_passwd(args) -> int:
    users = _users()
    password = _read_password(args, args.user_id)
    if password is None:
        from shared.errors import BadInput
        raise BadInput("没有终端可输入密码：请用 --password-stdin (no terminal: use --password-stdin)")
    users.set_password(args.user_id, password)
    print("console password set for %s" % args.user_id)
    return 0


def cmd_user_token_issue(args) -> int:
    print(_users().issue_token(args.user_id, args.label, args.days))
    return 0


def _when(us) -> str:
    from datetime import datetime, timezone
    if us is None:
        return "never"
    return datetime.fromtimestamp(us / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def cmd_user_token_list(args) -> int:
    for t in _users().list_tokens(args.user_id):
        print("%s  %-8s  created %s  expires %s  %s" % (
            t["token_id"], "revoked" if t["revoked"] else "active", _when(t["created_at_us"]),
            _when(t["expires_at_us"]), t["label"]))
    return 0


def cmd_user_token_revoke(args) -> int:
    from shared.errors import BadInput
    if bool(args.token_id) == bool(args.all):
        raise BadInput("请给出一个令牌编号或 --all (a token id from `user token list`, or --all)")
    n = _users().revoke_tokens(args.user_id, None if args.all else args.token_id)
    print("%d token(s) of %s revoked, effective now on this node" % (n, args.user_id))
    return 0


def cmd_user_disable(args) -> int:
    _users().set_disabled(args.user_id, not args.enable)
    print("user %s %s, effective now on this node" % (args.user_id, "enabled" if args.enable else "disabled"))
    return 0


# -- events and projections -----------------------------------------------------------------
def _services(arg: str | None) -> list[str]:
    return [arg] if arg else list(registry.services())


def cmd_events_verify(args) -> int:
    """Exit 0: intact; 1: tampering found; 2: nothing to verify here (wrong path...).
    Only reads: a missing database is reported, never created (shared.verify)."""
    from shared.store import EventStore
    from shared.verify import MissingLog, open_readonly, verify_log
    engines, missing = {}, []
    for service in _services(args.service):
        try:
            engines[service] = open_readonly(config.database_url(service))
        except MissingLog as exc:
            missing.append("%s: %s" % (service, exc))
    if not engines or (args.service and missing):
        for line in missing:
            print(line, file=sys.stderr)
        return 2
    failed = 0
    for service, engine in engines.items():
        extra = []
        if service == "exchange":
            from services.exchange.anchors import check_outbox
            extra.append(check_outbox)
        report = verify_log(service, engine, EventStore(engine), extra,
                            progress=lambda total: _progress("%-12s" % service, total))
        if report.ok:
            print("%s: hash chain intact (%d events), checkpoints within it" % (service, report.checked))
        else:
            failed += 1
            first = report.first()
            print("%s: TAMPERED at position %s: %s (%d events verified, %d finding(s))"
                  % (service, first.position, first.reason, report.checked, len(report.findings)))
    for line in missing:
        print("%s (not on this node?)" % line)
    if args.against_anchors:
        from services.exchange.anchors import AnchorRefused, check_anchors, fetch_own_anchors
        try:
            statements, unreachable, forged = fetch_own_anchors()
        except AnchorRefused as exc:
            print("anchors: %s" % exc, file=sys.stderr)
            return 2
        for line in unreachable:  # the others answered: checked against theirs
            print("anchors: %s" % line, file=sys.stderr)
        for line in forged:
            print("anchors: FORGED: %s" % line)
        failed += bool(forged)
        mismatched = check_anchors(statements, engines)
        for service in sorted(set(engines) | set(mismatched)):
            if service in mismatched:
                failed += 1
                first = mismatched[service][0]
                print("%s: TAMPERED at position %s: %s" % (service, first.position, first.reason))
            else:
                n = sum(1 for s in statements for h in s["heads"] if h["service"] == service)
                print("%s: matches the %d anchor(s) other nodes hold" % (service, n))
    for engine in engines.values():
        engine.dispose()
    return 1 if failed else 0


def cmd_events_dead_letters(args) -> int:
    """What consumers gave up on (shared.service.handle_once), oldest first, to inspect
    and publish again once the cause is fixed."""
    from sqlalchemy import select
    from shared.store import dead_letters
    for service in _services(args.service):
        rt = _runtime(service)
        with rt.read() as conn:
            rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id)).mappings().all()
        print("%s: %d dead letter(s)" % (service, len(rows)))
        for r in rows:
            print("  #%d %s  %s  event %s  %d attempt(s)  %s" % (
                r["id"], _when(r["failed_at_us"]), r["consumer"], r["event_id"] or "(unparseable)",
                r["attempts"], " ".join(r["error"].split())[:200]))
            if args.body:
                print("    %s" % r["body"])
    return 0


def _parse_as_of(value: str) -> tuple[int | None, int | None]:
    if value.isdigit():
        return int(value), None
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        from zoneinfo import ZoneInfo
        dt = dt.replace(tzinfo=ZoneInfo(config.timezone_name()))
    return None, int(dt.astimezone(timezone.utc).timestamp() * 1_000_000)


def cmd_projections_rebuild(args) -> int:
    from shared.projections import build_as_of, rebuild_many
    rt = _runtime(args.service)
    chosen = [p for p in rt.projections if not args.projection or p.name == args.projection]
    if not chosen:
        print("no projection %s in %s (have: %s)" % (args.projection, args.service,
                                                     ", ".join(p.name for p in rt.projections)))
        return 2
    with rt.read() as conn:
        total = rt.store.head(conn)
    if args.as_of:
        position, until = _parse_as_of(args.as_of)
        engine = build_as_of(rt.store, chosen, position=position, until_us=until)
        out = Path(args.out or config.var_dir() / config.node_id() /
                   ("%s-as-of-%s.db" % (args.service, args.as_of.replace(":", ""))))
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.unlink()
        import sqlite3
        with engine.connect() as c:
            src = c.connection.driver_connection
            dst = sqlite3.connect(str(out))
            src.backup(dst)
            dst.close()
        print("read models of %s as of %s written to %s" % (args.service, args.as_of, out))
        return 0
    # all of them in one pass over the log (each event read and decoded once)
    n = rebuild_many(rt.store, chosen, progress=_progress("%-16s" % (
        chosen[0].name if len(chosen) == 1 else "%d read models" % len(chosen)), total))
    for p in chosen:
        print("%s: rebuilt from %d events" % (p.name, n))
    return 0


def cmd_contracts_generate(args) -> int:
    """Event schemas, AsyncAPI and OpenAPI documents under contracts/, from the code."""
    from shared import contracts, openapi
    if args.check:
        problems = contracts.drift() + openapi.drift()
        for p in problems:
            print(p)
        return 1 if problems else 0
    changed = contracts.generate() + openapi.generate()
    for path in changed:
        print("wrote %s" % path)
    if not changed:
        print("contracts/ is up to date")
    return 0


def refresh_screenshots(taken: Path, guide: Path) -> tuple[list[str], list[str]]:
    """Copy each picture the user guide holds (``guide``/<name>.png) from the browser
    tests' screenshots (``taken``/<name>.png, written by ``shoot``); returns the names
    copied and those no test run has taken. Tests never write ``guide`` themselves."""
    copied, missing = [], []
    for picture in sorted(guide.glob("*.png")):
        shot = taken / picture.name
        if shot.is_file():
            picture.write_bytes(shot.read_bytes())
            copied.append(picture.name)
        else:
            missing.append(picture.name)
    return copied, missing


def cmd_docs_screenshots(args) -> int:
    copied, missing = refresh_screenshots(REPO / "var" / "screenshots", REPO / "docs" / "console")
    print("docs/console: %d pictures copied from var/screenshots/" % len(copied))
    if missing:
        print("not in var/screenshots/ (run the console's browser tests first): %s" % ", ".join(missing))
    return 0


def cmd_docs_api(args) -> int:
    from shared import apidoc
    text = apidoc.render()
    if args.check:
        current = apidoc.API_MD.read_text(encoding="utf-8") if apidoc.API_MD.exists() else ""
        print("docs/API.md is %s" % ("up to date" if current == text else "OUT OF DATE: run `qinglian docs api`"))
        return 0 if current == text else 1
    apidoc.API_MD.write_text(text, encoding="utf-8")
    print("wrote %s" % apidoc.API_MD)
    return 0


# -- running a node ----------------------------------------------------------------------------
def broker_answers(uri: str, timeout: float = 3.0) -> bool:
    u = urlparse(uri)
    try:
        with socket.create_connection((u.hostname or "localhost", u.port or 5672), timeout=timeout):
            pass
    except OSError:
        return False
    from kombu import Connection
    try:
        with Connection(uri, connect_timeout=timeout) as c:
            c.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False


def service_command(service: str) -> list[str]:
    return [sys.executable, "-m", "nameko", "run", "--config", str(REPO / "deploy" / "config.yaml"),
            registry.get(service).target]


def cmd_run(args) -> int:
    from shared.brokerusers import service_amqp_uri
    uri = config.amqp_uri()
    if not broker_answers(uri):
        print("RabbitMQ is not answering at %s - start it with `rabbitmq-server -detached` "
              "(or `docker compose up -d rabbitmq`), or set AMQP_URI." % uri)
        return 1
    services = args.services or list(registry.names())
    base_port = args.base_port
    procs = []
    for i, service in enumerate(services):
        env = dict(os.environ)
        # nameko's CLI imports eventlet and pkg_resources first: hide their two notices
        env.setdefault("PYTHONWARNINGS", QUIET_WARNINGS)
        port = base_port + i if base_port else config.DEFAULT_PORTS[service]
        env["WEB_SERVER_ADDRESS"] = "%s:%d" % (args.host, port)
        env.setdefault("NODE_ID", config.node_id())
        # its own broker login once the node has them (qinglian node broker-users)
        env["AMQP_URI"] = service_amqp_uri(service)
        # own session: Ctrl-C reaches only this launcher, which stops each service once
        # (nameko 2.14 trips over a second stop signal while stopping its timers)
        procs.append((service, port, subprocess.Popen(service_command(service), env=env, cwd=str(REPO),
                                                      start_new_session=True)))
        print("%-12s http://%s:%d  %s" % (service, args.host, port,
                                          "(管理控制台: open this address in a browser)"
                                          if service == "console" else "(/health, /metrics, /api/...)"))
    print("node %s running on %s; Ctrl-C stops it." % (config.node_id(), uri))

    stopping = []

    def stop(*_):
        stopping.append(1)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for service, _port, p in procs:
                if p.poll() is not None:
                    print("%s exited with %s; stopping the node" % (service, p.returncode))
                    stopping.append(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for _s, _p, p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for _s, _p, p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    return 0


def cmd_demo(args) -> int:
    if args.districts is not None:
        from tooling.citydemo import run_city_demo
        return run_city_demo(args.districts, check=args.check, base_port=args.base_port,
                             prefix=args.prefix, services=args.services,
                             year_share=args.year_share, seed=args.seed, keep=args.keep,
                             api=args.api)
    from tooling.demo import run_demo  # requests and the scenario: only for this command
    return run_demo(check=args.check, base_port=args.base_port, prefix=args.prefix,
                    keep=args.keep, services=args.services, api=args.api)


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="qinglian", description="Qinglian node console")
    root = parser.add_subparsers(dest="command", required=True)
    groups = {}

    node = root.add_parser("node", help="this node: identity and peers").add_subparsers(dest="sub", required=True)
    groups["node"] = node
    p = node.add_parser("init", help="node id, level, parent, key pair, first admin")
    p.add_argument("--node-id", required=True)
    p.add_argument("--level", choices=["city", "district"],
                   help="default: district with --parent (or NODE_PARENT), else NODE_LEVEL or city")
    p.add_argument("--parent")
    p.add_argument("--feed-url")
    p.add_argument("--admin-user", default="admin")
    p.add_argument("--admin-name", default="管理员")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the first admin's console password from stdin (else prompt)")
    p.set_defaults(func=cmd_node_init)
    p = node.add_parser("broker-users", help="each service's own broker user on this node's vhost")
    p.add_argument("--api", help="management API URL (default RABBITMQ_API_URL, else from AMQP_URI)")
    p.add_argument("--remove", action="store_true", help="delete them (and their passwords)")
    p.set_defaults(func=cmd_node_broker_users)

    user = root.add_parser("user", help="users and API tokens").add_subparsers(dest="sub", required=True)
    groups["user"] = user
    p = user.add_parser("add")
    p.add_argument("user_id")
    p.add_argument("--name", required=True)
    p.add_argument("--role", action="append", required=True,
                   choices=["node-admin", "unit-admin", "inspector", "viewer"])
    p.add_argument("--unit-scope")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the console password from stdin (else prompt at a terminal)")
    p.set_defaults(func=cmd_user_add)
    p = user.add_parser("passwd", help="set or reset a user's console password")
    p.add_argument("user_id")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_user_passwd)
    token = user.add_parser("token", help="a user's API tokens").add_subparsers(dest="tsub", required=True)
    p = token.add_parser("issue", help="issue another token (shown once)")
    p.add_argument("user_id")
    p.add_argument("--label", default="api")
    p.add_argument("--days", type=float, help="valid for this many days (default QINGLIAN_TOKEN_DAYS)")
    p.set_defaults(func=cmd_user_token_issue)
    p = token.add_parser("list", help="a user's tokens by id (never the token itself)")
    p.add_argument("user_id")
    p.set_defaults(func=cmd_user_token_list)
    p = token.add_parser("revoke", help="revoke one token by id, or --all")
    p.add_argument("user_id")
    p.add_argument("token_id", nargs="?")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_user_token_revoke)
    p = user.add_parser("disable", help="refuse every token and session of a user")
    p.add_argument("user_id")
    p.set_defaults(func=cmd_user_disable, enable=False)
    p = user.add_parser("enable", help="undo disable")
    p.add_argument("user_id")
    p.set_defaults(func=cmd_user_disable, enable=True)

    events = root.add_parser("events").add_subparsers(dest="sub", required=True)
    p = events.add_parser("verify", help="walk the hash chain; name the first tampered row")
    p.add_argument("--service", choices=registry.services())
    p.add_argument("--against-anchors", action="store_true",
                   help="also compare with the signed log heads another node holds")
    p.set_defaults(func=cmd_events_verify)
    p = events.add_parser("dead-letters", help="events a consumer gave up on, with the error")
    p.add_argument("--service", choices=registry.services())
    p.add_argument("--body", action="store_true", help="print each message body too")
    p.set_defaults(func=cmd_events_dead_letters)

    proj = root.add_parser("projections").add_subparsers(dest="sub", required=True)
    p = proj.add_parser("rebuild", help="rebuild read models (or build them as of a past point)")
    p.add_argument("--service", required=True, choices=registry.services())
    p.add_argument("--projection")
    p.add_argument("--as-of", help="a log position, or an ISO date-time (local time zone if none)")
    p.add_argument("--out", help="with --as-of: SQLite file to write the read models to")
    p.set_defaults(func=cmd_projections_rebuild)

    contracts = root.add_parser("contracts").add_subparsers(dest="sub", required=True)
    for name in ("generate", "asyncapi"):  # "asyncapi": the earlier name, same command
        p = contracts.add_parser(name, help="regenerate contracts/ (event JSON Schemas, AsyncAPI, "
                                 "OpenAPI) from the code")
        p.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
        p.set_defaults(func=cmd_contracts_generate)

    docs = root.add_parser("docs").add_subparsers(dest="sub", required=True)
    p = docs.add_parser("api", help="regenerate docs/API.md from the services' declarations")
    p.add_argument("--check", action="store_true", help="exit 1 if docs/API.md is out of date")
    p.set_defaults(func=cmd_docs_api)
    p = docs.add_parser("screenshots", help="refresh the user guide's pictures (docs/console/*.png) "
                        "from the browser tests' var/screenshots/")
    p.set_defaults(func=cmd_docs_screenshots)

    p = root.add_parser("run", help="start every service of this node")
    p.add_argument("--services", nargs="*", choices=registry.names())
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--base-port", type=int, default=0)
    p.set_defaults(func=cmd_run)

    from tooling import backup, federation_cli
    backup.register(root)

    groups["federation"] = root.add_parser("federation", help="links to other nodes").add_subparsers(
        dest="sub", required=True)
    federation_cli.register(groups)

    p = root.add_parser("demo", help="a city and two districts on this machine, with a scenario")
    p.add_argument("--check", action="store_true",
                   help="run the scenario, check all three nodes agree, stop; exit 0/1")
    p.add_argument("--base-port", type=int, default=8200)
    p.add_argument("--prefix", default="qinglian-demo", help="vhost name prefix")
    p.add_argument("--keep", action="store_true", help="keep the vhosts when stopping")
    p.add_argument("--services", nargs="*", default=None,
                   help="services per node (default: units and exchange)")
    p.add_argument("--api", help=federation_cli.API_HELP)
    p.add_argument("--districts", type=int, default=None, metavar="N",
                   help="instead: a city and N districts (district-01 …), each with a seeded "
                        "year loaded (tooling/citydemo.py); ports base-port + 5 × node + 1…4")
    p.add_argument("--year-share", type=float, default=0.02,
                   help="with --districts: share of a full district year (1 = 300 units, "
                        "3,000 members; default 0.02)")
    p.add_argument("--seed", type=int, default=13, help="with --districts: the years' seed")
    p.set_defaults(func=cmd_demo)
    return parser


def one_line(exc: BaseException) -> str:
    """An exception as the one line an operator reads: what failed and why, no
    traceback (QINGLIAN_TRACEBACK=1 shows it, for a bug report)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = "database: %s" % exc.orig
    elif isinstance(exc, SQLAlchemyError):
        text = "database: %s" % exc
    elif isinstance(exc, OSError) and exc.filename:
        text = "%s: %s" % (exc.strerror or type(exc).__name__, exc.filename)
    else:
        text = str(exc) or type(exc).__name__
        if not isinstance(exc, (ValueError, LookupError, RuntimeError, OSError)) or type(exc).__module__ != "builtins":
            text = "%s: %s" % (type(exc).__name__, text)
    text = " ".join(text.split())
    return text if len(text) <= 400 else text[:397] + "..."


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (with where to find the usage)."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see `%s --help`)\n" % (self.prog, message, self.prog))


def main(argv=None) -> int:
    from shared.errors import QinglianError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except QinglianError as exc:
        print("error: %s" % " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - an operator's console never shows a traceback
        if os.environ.get("QINGLIAN_TRACEBACK"):
            raise
        print("error: %s" % one_line(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
