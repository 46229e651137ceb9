#!/usr/bin/env python3
"""Example: a service on one Qinglian node that follows the shared feeds (五联五互).

It needs only ``kombu`` and ``cryptography`` - nothing of Qinglian itself - and does
what contracts/federation/asyncapi.yaml asks of a subscriber:

1. bind a durable queue of its own, on ITS OWN node's broker, to ``qinglian.shared``
   (or, at the city, ``qinglian.city``) with the routing keys it wants
   (``<kind>.<origin>.<event type>``: ``case.#``, ``*.district-a.#``, ``#``);
2. verify each message: Ed25519 over the canonical JSON of every field but
   ``signature``, with the origin's public key (``qinglian federation identity`` on that
   node, or the node registry); refuse a signer that is not the origin;
3. dedupe on (origin, origin_seq) - federation links redeliver after a restart;
4. ack after handling.

Run, for example against the demo's city (``make demo`` prints the vhosts)::

    python docs/examples/shared_feed_consumer.py \\
        --amqp amqp://guest:guest@localhost:5672/qinglian-demo-1a2b-city \\
        --binding 'case.#' --binding '#.JointProblem.Resolved' \\
        --public-key district-a=<base64> --public-key district-b=<base64>

Without ``--public-key`` messages are shown as "unverified". ``--max N`` stops after N
messages (tests use it). A real subscriber keeps its dedupe state durably (a table
keyed by origin and sequence) and, to have every record, asks the origin's signed feed
(``GET /feed?after=N``) for what it missed; this example keeps it in memory.
"""
from __future__ import annotations

import argparse
import base64
import json
import signal
import socket
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from kombu import Connection, Exchange, Queue, binding


def canonical_bytes(envelope: dict) -> bytes:
    """What the origin signed: every field but the signature, canonical JSON, UTF-8."""
    body = {k: v for k, v in envelope.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def check(envelope: dict, keys: dict[str, Ed25519PublicKey]) -> str:
    """'verified', 'unverified' (no key given for its origin) or raise ValueError."""
    origin, signer = envelope.get("origin"), envelope.get("signer")
    if signer != origin:
        raise ValueError("signed by %r but claims origin %r" % (signer, origin))
    key = keys.get(origin)
    if key is None:
        return "unverified"
    try:
        key.verify(base64.b64decode(envelope["signature"]), canonical_bytes(envelope))
    except (InvalidSignature, KeyError, ValueError):
        raise ValueError("signature does not verify under %s's key" % origin) from None
    return "verified"


def describe(envelope: dict) -> str:
    p = envelope.get("payload") or {}
    title = p.get("title") or p.get("summary") or p.get("text") or ""
    record = next((v for k, v in sorted(p.items()) if k.endswith("_id") and isinstance(v, str)
                   and "/" in v), "")
    return "%s #%s %-28s %-36s %s" % (envelope.get("origin"), envelope.get("origin_seq"),
                                      envelope.get("type"), record, title[:40])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--amqp", required=True, help="your node's broker, vhost included")
    ap.add_argument("--exchange", default="qinglian.shared",
                    choices=["qinglian.shared", "qinglian.city", "qinglian.named"])
    ap.add_argument("--binding", action="append", help="routing key pattern (repeatable; default #)")
    ap.add_argument("--queue", default="example.shared-feed", help="your durable queue's name")
    ap.add_argument("--public-key", action="append", default=[], metavar="NODE=BASE64")
    ap.add_argument("--max", type=int, default=0, help="stop after this many messages")
    ap.add_argument("--idle-timeout", type=float, default=0,
                    help="stop when nothing arrives for this many seconds (0: never)")
    args = ap.parse_args(argv)

    keys = {}
    for item in args.public_key:
        node, _, b64 = item.partition("=")
        keys[node] = Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))

    exchange = Exchange(args.exchange, type="topic", durable=True, auto_delete=False)
    queue = Queue(args.queue, durable=True, auto_delete=False, bindings=[
        binding(exchange, routing_key=key) for key in (args.binding or ["#"])])
    seen: set[tuple[str, int]] = set()
    handled = 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))

    def on_message(message) -> None:
        nonlocal handled
        try:
            envelope = json.loads(message.body)
            status = check(envelope, keys)
        except ValueError as exc:  # also: not JSON
            print("REFUSED %s" % exc, flush=True)
            message.ack()
            return
        key = (envelope["origin"], envelope["origin_seq"])
        if key in seen:
            print("duplicate %s #%s (skipped)" % key, flush=True)
        else:
            seen.add(key)
            print("%-10s %s" % (status, describe(envelope)), flush=True)
        message.ack()  # after handling: a crash before this means redelivery, not loss
        handled += 1

    with Connection(args.amqp) as conn:
        with conn.Consumer(queue, on_message=on_message, prefetch_count=100):
            print("listening on %s %s %s" % (args.exchange, args.binding or ["#"], args.queue),
                  flush=True)
            idle = 0.0
            while not stopping and not (args.max and handled >= args.max):
                try:
                    conn.drain_events(timeout=1)
                    idle = 0.0
                except socket.timeout:
                    idle += 1
                    if args.idle_timeout and idle >= args.idle_timeout:
                        break
                except KeyboardInterrupt:
                    break
    return 0


if __name__ == "__main__":
    sys.exit(main())
