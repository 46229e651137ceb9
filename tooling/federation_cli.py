"""``qinglian`` subcommands that concern other nodes: trust, the federation links, the
exchange service's outbox and contracts (registered by ``tooling.cli``).

    qinglian node trust district-a --level district --parent city \\
        --public-key <base64> --feed-url http://district-a.example:8104/feed
    qinglian node untrust district-c             # a leaked key, a decommissioned node
    qinglian federation identity                 # what to send to the peers' operators
    qinglian federation resign-outbox            # after a key rotation
    qinglian federation link --peer city --peer-amqp amqp://ql-link:***@mq.city.example/city
    qinglian federation link-user --peer district-a --user ql-link-a --password ***
    qinglian federation unlink --peer district-c # decommissioning only
    qinglian federation status [--json]
    qinglian federation contracts [--check]    # contracts/federation/ from the code
    qinglian federation cluster-name [NAME]    # distinct per broker (loop detection)

Settings come from the environment like every other command (``NODE_ID``,
``AMQP_URI``, ``QINGLIAN_VAR``, ``NODE_DATABASE_URL``, ``EXCHANGE_DATABASE_URL``).
"""
from __future__ import annotations

import argparse
import json
import sys

from shared import config


def _registry():
    from shared.federation.keys import node_registry
    return node_registry()


def _admin(args):
    from shared.federation.broker import BrokerAdmin
    return BrokerAdmin.for_node(config.amqp_uri(), getattr(args, "api", None) or config.rabbit_api_url())


def _fail(message: str, code: int = 2) -> int:
    # one line, even when the broker's reason is a multi-line Erlang term
    print("error: %s" % " ".join(message.split()), file=sys.stderr)
    return code


# -- node trust ------------------------------------------------------------------------------
def cmd_node_trust(args) -> int:
    from shared.federation.registry import KeyConflict
    try:
        record = _registry().trust(args.node_id, args.level, args.parent, args.public_key,
                                   args.feed_url, replace=args.replace)
    except KeyConflict as exc:
        return _fail("%s (if the peer really changed its key: --replace)" % exc)
    except ValueError as exc:
        return _fail(str(exc))
    print("trusted %s (%s%s), key %s…, feed %s" % (
        record.node_id, record.level, ", parent %s" % record.parent if record.parent else "",
        record.public_key[:12], record.feed_url or "-"))
    return 0


def cmd_node_untrust(args) -> int:
    """Stop trusting a node (its key leaked, or it is decommissioned): its messages are
    refused as untrusted_node from now on (within seconds: the key cache)."""
    try:
        removed = _registry().untrust(args.node_id)
    except ValueError as exc:
        return _fail(str(exc))
    print("%s is no longer trusted" % args.node_id if removed else "%s was not trusted" % args.node_id)
    return 0


def cmd_resign(args) -> int:
    """After a key rotation: sign this node's outbox again with its current key."""
    from shared.db import make_engine
    from shared.federation.keys import MissingNodeKey, load_node_key

    from services.exchange.federation import metadata, resign_outbox
    try:
        key = load_node_key()
    except MissingNodeKey as exc:
        return _fail(str(exc))
    engine = make_engine(config.database_url("exchange"))
    try:
        metadata.create_all(engine)
        n = resign_outbox(engine, key, config.node_id())
    finally:
        engine.dispose()
    print("signed %d envelopes again with the current key" % n)
    return 0


def cmd_identity(args) -> int:
    from shared.federation.keys import MissingNodeKey, identity
    try:
        ident = identity()
    except MissingNodeKey as exc:
        return _fail(str(exc))
    print(json.dumps(ident, ensure_ascii=False, indent=2))
    if ident.get("level"):
        print("# on the peer: qinglian node trust %s --level %s%s --public-key %s%s" % (
            ident["node_id"], ident["level"],
            " --parent %s" % ident["parent"] if ident.get("parent") else "", ident["public_key"],
            " --feed-url %s" % ident["feed_url"] if ident.get("feed_url") else ""),
            file=sys.stderr)
    return 0


# -- federation link ---------------------------------------------------------------------------
def cmd_link(args) -> int:
    """The broker-level link to one peer, on this node's broker (the downstream side):
    a district pulls qinglian.shared and its qinglian.to.<district> from its city
    (max-hops 2); the
    city pulls all three exchanges from a district (max-hops 1)."""
    from shared.federation.broker import (
        DOWN_MAX_HOPS, EXCHANGES, UP_EXCHANGES, UP_MAX_HOPS, BrokerError, down_exchanges,
        vhost_of,
    )
    registry = _registry()
    me, peer = registry.this_node(), registry.get(args.peer)
    if me is None:
        return _fail("this node has no identity yet: run `qinglian node init`")
    if peer is None:
        return _fail("%s is not trusted here: `qinglian node trust %s ...` first" % (args.peer, args.peer))
    if me.level == "city" and peer.level == "district":
        exchanges, hops = UP_EXCHANGES, UP_MAX_HOPS
    elif me.level == "district" and peer.level == "city":
        if me.parent and me.parent != peer.node_id:
            return _fail("%s's city is %s, not %s" % (me.node_id, me.parent, peer.node_id))
        exchanges, hops = down_exchanges(me.node_id), DOWN_MAX_HOPS
    else:
        return _fail("only city <-> district links exist (districts reach each other through "
                     "the city); %s is %s, %s is %s" % (me.node_id, me.level, peer.node_id, peer.level))
    admin = _admin(args)
    vhost = vhost_of(config.amqp_uri())
    try:
        before = admin.upstreams(vhost).get(peer.node_id)
        admin.declare_exchanges(vhost, EXCHANGES)
        # named records travel through the district's own exchange (broker module doc)
        district = peer.node_id if me.level == "city" else me.node_id
        admin.route_named(vhost, district, at_city=me.level == "city")
    except BrokerError as exc:
        return _fail(str(exc), 1)
    try:
        changed = admin.link(vhost, peer.node_id, args.peer_amqp, exchanges, max_hops=hops)
        if args.wait:
            admin.wait_for_links(vhost, [peer.node_id], args.wait, exchanges)
    except (BrokerError, TimeoutError) as exc:
        return _fail("%s; %s" % (exc, _undo_link(admin, vhost, peer.node_id, before, exchanges)), 1)
    print("%s link %s <- %s on %s (max-hops %d, exchanges %s)" % (
        "created" if changed else "unchanged", me.node_id, peer.node_id, vhost, hops,
        ", ".join(exchanges)))
    return 0


def _undo_link(admin, vhost: str, peer: str, before: dict | None, exchanges) -> str:
    """A link that does not run is not left behind: a new one is removed (with the
    policies, if no other link needs them), a changed one gets its old definition back."""
    from shared.federation.broker import BrokerError
    try:
        if before is None:
            admin.unlink(vhost, peer, exchanges)
            return "the new link was removed again"
        admin.put_upstream(vhost, peer, before)
        return "the link's previous definition was put back"
    except BrokerError as exc:
        return "and undoing it failed too (%s): `qinglian federation unlink --peer %s`" % (exc, peer)


def cmd_unlink(args) -> int:
    from shared.federation.broker import BrokerError, vhost_of
    try:
        removed = _admin(args).unlink(vhost_of(config.amqp_uri()), args.peer)
    except BrokerError as exc:
        return _fail(str(exc), 1)
    print("removed the link from %s" % args.peer if removed else "no link from %s" % args.peer)
    return 0


def cmd_link_user(args) -> int:
    """The broker user a peer's link logs in with on this node's broker. At the city,
    for a district's down-link: limited to what that district may see (see
    BrokerAdmin.grant_district_link_user). At a district, for its city's up-link."""
    from shared.federation.broker import BrokerError, vhost_of
    peer = args.peer or args.district
    if not peer:
        return _fail("name the peer whose link logs in as this user: --peer <node id>")
    me = _registry().this_node()
    if me is None:
        return _fail("this node has no identity yet: run `qinglian node init`")
    if me.level == "district" and peer != me.parent:
        return _fail("a district's broker is pulled from by its city only (%s's city is %s, not %s)"
                     % (me.node_id, me.parent, peer))
    admin = _admin(args)
    vhost = vhost_of(config.amqp_uri())
    try:
        # the peer's link binds to these exchanges: they must exist before it starts,
        # whether or not this node's exchange service has run yet
        admin.declare_exchanges(vhost)
        admin.ensure_user(args.user, args.password)
        if me.level == "city":
            admin.grant_district_link_user(vhost, args.user, peer)
            admin.route_named(vhost, peer, at_city=True)  # what that user may read
        else:
            admin.grant_city_link_user(vhost, args.user)
    except (BrokerError, ValueError) as exc:
        return _fail(str(exc), 1)
    print("user %s may pull what %s may see from this broker (vhost %s); give %s its URI" % (
        args.user, peer, vhost, peer))
    return 0


def cmd_status(args) -> int:
    from sqlalchemy import select

    from shared.db import make_engine, readonly
    from shared.federation.broker import EXCHANGES, NAMED_FOR_PREFIX, BrokerError, vhost_of
    out = {"node": config.node_id(), "links": [], "outbox": None, "inbox": []}
    try:
        out["links"] = [{k: l.get(k) for k in ("upstream", "exchange", "status", "error")}
                        for l in _admin(args).link_status(vhost_of(config.amqp_uri()))
                        if l.get("exchange") in EXCHANGES
                        or l.get("exchange", "").startswith(NAMED_FOR_PREFIX)]
    except BrokerError as exc:
        out["links_error"] = str(exc)
    from services.exchange.federation import PUBLISHER_CHECKPOINT, inbox, outbox
    from shared.store import checkpoints
    engine = make_engine(config.database_url("exchange"))
    try:
        with readonly(engine.connect()) as conn:
            from sqlalchemy import func
            head = conn.execute(select(func.max(outbox.c.origin_seq))).scalar() or 0
            done = conn.execute(select(checkpoints.c.position)
                                .where(checkpoints.c.name == PUBLISHER_CHECKPOINT)).scalar() or 0
            out["outbox"] = {"head": head, "published": done, "pending": head - done}
            out["inbox"] = [{k: v for k, v in dict(r).items() if k != "updated_at_us"}
                            for r in conn.execute(select(inbox).order_by(inbox.c.origin)).mappings()]
    except Exception as exc:  # noqa: BLE001 - a node whose exchange service never ran
        out["store_error"] = "no exchange store yet (%s)" % type(exc).__name__
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0 if "links_error" not in out else 1
    print("node %s" % out["node"])
    if "links_error" in out:
        print("  links: %s" % out["links_error"])
    for l in out["links"]:
        print("  link  %-12s %-16s %s%s" % (l["upstream"], l["exchange"], l["status"],
                                           " (%s)" % l["error"] if l.get("error") else ""))
    if out["outbox"]:
        o = out["outbox"]
        print("  outbox: %d signed, %d published, %d pending" % (o["head"], o["published"], o["pending"]))
    for i in out["inbox"]:
        print("  from %-12s applied through #%d: %d events, %d refused, last %s" % (
            i["origin"], i["applied_through"], i["events_applied"], i["rejected"],
            i["last_occurred_at"] or "-"))
    if "store_error" in out:
        print("  %s" % out["store_error"])
    return 0 if "links_error" not in out else 1


def cmd_cluster_name(args) -> int:
    """Show or set this broker's cluster name (distinct per node: loop detection)."""
    from shared.federation.broker import BrokerError
    admin = _admin(args)
    try:
        if args.name:
            admin.set_cluster_name(args.name)
        print(admin.cluster_name())
    except BrokerError as exc:
        return _fail(str(exc), 1)
    return 0


def cmd_contracts(args) -> int:
    from services.exchange import contracts
    if args.check:
        problems = contracts.drift()
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for path in contracts.write():
        print("wrote %s" % path)
    return 0


# -- wiring ----------------------------------------------------------------------------------
API_HELP = ("this node's RabbitMQ management API, http(s)://[user:password@]host:port "
            "(default: RABBITMQ_API_URL, else AMQP_URI's host, port 15672)")


def register(groups: dict) -> None:
    """Adds ``node trust``/``untrust`` and the ``federation`` commands to their groups."""
    node, fed = groups["node"], groups["federation"]

    p = node.add_parser("trust", help="trust a peer node: id, level, parent, public key, feed URL")
    p.add_argument("node_id")
    p.add_argument("--level", required=True, choices=["city", "district"])
    p.add_argument("--parent", help="a district's city")
    p.add_argument("--public-key", required=True, help="base64 Ed25519 public key (its `federation identity`)")
    p.add_argument("--feed-url", help="http(s)://host:port/feed of its exchange service")
    p.add_argument("--replace", action="store_true", help="replace a different key already trusted")
    p.set_defaults(func=cmd_node_trust)

    p = node.add_parser("untrust", help="stop trusting a node (leaked key, decommissioned)")
    p.add_argument("node_id")
    p.set_defaults(func=cmd_node_untrust)

    p = fed.add_parser("resign-outbox", help="after a key rotation: sign the outbox again")
    p.set_defaults(func=cmd_resign)

    p = fed.add_parser("identity", help="this node's id, level, parent, public key and feed URL")
    p.set_defaults(func=cmd_identity)

    p = fed.add_parser("link", help="create the federation link from a peer on this node's broker")
    p.add_argument("--peer", required=True, help="the peer's node id (trusted already)")
    p.add_argument("--peer-amqp", required=True,
                   help="the peer's broker as this broker reaches it, vhost included")
    p.add_argument("--api", help=API_HELP)
    p.add_argument("--wait", type=float, default=20.0, help="seconds to wait for the link to run (0: don't)")
    p.set_defaults(func=cmd_link)

    p = fed.add_parser("unlink", help="remove a peer's link (decommissioning: its buffer is lost)")
    p.add_argument("--peer", required=True)
    p.add_argument("--api", help=API_HELP)
    p.set_defaults(func=cmd_unlink)

    p = fed.add_parser("link-user", help="the broker user a peer's link logs in with here "
                                          "(at the city: limited to what that district may see)")
    p.add_argument("--peer", help="the node whose link uses this user (a district, or this district's city)")
    p.add_argument("--district", help=argparse.SUPPRESS)  # the older name of --peer
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--api", help=API_HELP)
    p.set_defaults(func=cmd_link_user)

    p = fed.add_parser("status", help="links, outbox and what was received from each node")
    p.add_argument("--json", action="store_true")
    p.add_argument("--api", help=API_HELP)
    p.set_defaults(func=cmd_status)

    p = fed.add_parser("cluster-name", help="show or set this broker's cluster name "
                                             "(must differ between nodes' brokers)")
    p.add_argument("name", nargs="?")
    p.add_argument("--api", help=API_HELP)
    p.set_defaults(func=cmd_cluster_name)

    p = fed.add_parser("contracts", help="regenerate contracts/federation/ (envelope, AsyncAPI)")
    p.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    p.set_defaults(func=cmd_contracts)
