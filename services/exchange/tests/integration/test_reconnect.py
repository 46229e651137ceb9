"""What the inbox consumer held in memory is not lost when it reconnects.

Records that arrive ahead of a missing number are held back and acknowledged (the
origin's feed can always give them again). A consumer that fails (the broker closes its
connection, a write fails) reloads the watermarks and forgets them; the broker will not
bring them again, and when they were an origin's last numbers no later one reveals the
hole. Before the fix they stayed missing until the periodic sync (an hour in the scale
bench, docs/scaling.md).
"""
from __future__ import annotations

import time

import eventlet
import eventlet.wsgi
from kombu import Connection, Exchange, Producer
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from services.exchange.federation import InboxConsumer, inbox, inbox_queue, outbox
from services.exchange.tests.integration.test_commands import Solo, seed
from shared.federation.broker import SHARED_EXCHANGE
from shared.federation.envelope import dumps, public_key_b64


def serve_feed(solo) -> tuple[str, object]:
    """``solo``'s ``GET /feed`` on a port of its own (the service's handler's work)."""
    def app(environ, start_response):
        request = Request(environ)
        body = solo.fed.feed_page(request.headers, request.args)
        return Response(body, mimetype="application/json")(environ, start_response)
    sock = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(eventlet.wsgi.server, sock, app, log_output=False)
    return "http://127.0.0.1:%d/feed" % sock.getsockname()[1], server


def test_held_records_are_read_from_the_feed_after_the_consumer_reconnects(
        tmp_path, vhost, rabbit_admin):
    a = Solo(tmp_path / "a")
    city = Solo(tmp_path / "city", node_id="city", level="city", parent=None)
    url, server = serve_feed(a)
    city.registry.trust("district-a", "district", "city", public_key_b64(a.keys["district-a"]),
                        url, replace=True)
    a.registry.trust("city", "city", None, public_key_b64(city.keys["city"]), replace=True)
    city.fed.sync_interval = 3600  # as in the scale bench: only the live path
    city.fed.sequencer.grace = 3600  # the hole is not pulled for before the consumer fails
    consumer = InboxConsumer(city.fed, vhost["uri"], idle=0.05)
    with Connection(vhost["uri"]) as conn:
        inbox_queue("city", "city")(conn.channel()).declare()
    exchange = Exchange(SHARED_EXCHANGE, type="topic", durable=True)

    def publish(envelopes):
        with Connection(vhost["uri"]) as conn:
            producer = Producer(conn.channel(), exchange)
            for env in envelopes:
                producer.publish(dumps(env), routing_key="case.district-a.x",
                                 content_type="application/json", delivery_mode=2)

    envelopes, stage, steps, first_conn = [], ["start"], [0], [None]

    def should_stop() -> bool:
        # each call is one turn of the consumer's loop: the script moves on when the
        # consumer has done what the last stage waited for
        steps[0] += 1
        if steps[0] > 2000:
            return True  # the asserts below say what did not happen
        if stage[0] == "start" and consumer._conn is not None:
            # the first turn (and its sync at start) is done: district-a shares its
            # records now; all but #1 reach the city (#1 is late)
            seed(a)
            with a.rt.read() as conn:
                envelopes.extend(r[0] for r in conn.execute(
                    select(outbox.c.envelope).order_by(outbox.c.origin_seq)))
            publish(envelopes[1:])
            stage[0] = "published"
        elif stage[0] == "published" and \
                city.fed.sequencer.held_count("district-a") == len(envelopes) - 1:
            first_conn[0] = consumer._conn  # held and acknowledged
            stage[0] = "closing"
        elif stage[0] == "closing":
            # now the broker closes the consumer's connection (once its management API
            # lists it: the list lags the connection by a few seconds)
            port = consumer._conn.connection.sock.getsockname()[1]
            for c in rabbit_admin._call("GET", "vhosts", vhost["name"], "connections"):
                if c.get("peer_port") == port:
                    rabbit_admin._call("DELETE", "connections", c["name"])
                    stage[0] = "closed"
        elif stage[0] == "closed" and consumer._conn is not None \
                and consumer._conn is not first_conn[0]:
            publish(envelopes[:1])  # reconnected: the late #1 arrives
            stage[0], steps[0] = "reconnected", 1990
        return stage[0] == "reconnected" and steps[0] >= 1995

    try:
        consumer.run(should_stop, lambda seconds: time.sleep(0.05))
    finally:
        consumer.close()
        server.kill()
    assert stage[0] == "reconnected"
    with city.rt.read() as conn:
        applied = conn.execute(select(inbox.c.applied_through)
                               .where(inbox.c.origin == "district-a")).scalar()
    assert len(envelopes) >= 5
    # #1 alone without the feed; everything with it
    assert applied == len(envelopes)
    assert city.fed.sequencer.held_count() == 0
