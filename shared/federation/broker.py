"""Broker-level links between nodes, made of RabbitMQ's own federation plugin.

Each node (the city, each district) has its own broker — a vhost of one broker in
tests and in the local demo. Nodes are joined by *exchange federation*: the plugin
copies messages from an upstream exchange into the downstream exchange of the same
name, with publisher confirms (``ack-mode: on-confirm``) and a buffer queue on the
upstream side, so a link that is down loses nothing. Everything here only configures
the plugin through the management HTTP API; no byte of a record is forwarded by our code.

Three exchanges, one per sharing level that leaves a node. The broker does not know
about sharing levels: federation copies whatever a downstream has a binding for. So
the audience of a record is enforced by *which exchange it is published to and which
exchanges are federated in which direction*, not by receivers politely ignoring it:

- ``qinglian.shared`` ("all": the city and every district) — federated both ways.
- ``qinglian.city``   ("city": up to the city only) — federated district → city only.
  No district has a link for it, so a district's city-only record cannot reach another
  district's broker whatever that district binds.
- ``qinglian.named``  ("named": listed nodes) — the routing key starts with the
  recipient's node id (``<recipient>.<kind>.<origin>.<type>``; one copy per
  recipient). Districts send it up to the city (the hub of the star, which every
  district-to-district record transits). Down, a district is never linked to the
  city's ``qinglian.named`` itself: at the city, an exchange-to-exchange binding
  ``<district>.#`` feeds a per-district exchange ``qinglian.to.<district>``
  (``named_for``), and that is what the district's down-link pulls, into its own
  ``qinglian.to.<district>``, bound ``#`` to its local ``qinglian.named``. So whatever
  anyone binds on a district's broker - ``#`` included - only records addressed to that
  district (and its own) are ever in it. The district's link user at the city may
  read ``qinglian.shared`` and its own ``qinglian.to.<district>`` and nothing else
  (``grant_district_link_user``): a district that re-pointed its link elsewhere would
  get an access-refused link, not the records. Receivers check the audience again on
  receipt (defence in depth).

``node``-level records are never published at all (the exchange service's outbox
refuses to stage them and its publisher refuses to send them).

Topology (``Topology``): a star. The city pulls all three exchanges from each
district; each district pulls ``qinglian.shared`` and its ``qinglian.to.<district>``
(never ``qinglian.city``) from the city; a district reaches its peers through the city
(2 hops). Every link logs in as a *link user* of its own that may read only the
exchanges that link carries (``Topology`` makes them; ``qinglian federation link-user``
in a deployment), never the broker's admin or guest::

    district-a ──► city ──► district-b
    district-a ◄── city ◄── district-b

Loops and max-hops. With links both ways a message could go district-a → city →
district-a → ... The plugin stamps each copy with an ``x-received-from`` header (one
entry per link crossed: cluster name, vhost, exchange) and, on the upstream side, drops a
message for a downstream when (a) the header already has ``max-hops`` entries, or
(b) the downstream (cluster name + vhost) is already in the header. ``max-hops`` is
read from the *downstream's* upstream definition, so each direction has its own:

- ``UP_MAX_HOPS = 1``  (the city's upstreams, i.e. district → city): the city takes
  from a district only what was published there, never what the district itself
  received from the city;
- ``DOWN_MAX_HOPS = 2`` (each district's upstream, i.e. city → district): a district
  takes the city's own records (0 hops so far) and the other districts' records that
  reached the city (1 hop), and nothing that has already made 2 hops.

So every node sees every message exactly once, and even if the visited-node check were
defeated (see below) a message could make at most one extra round trip, never a loop.
``tests/e2e/federation/test_broker.py`` proves both: exactly one copy per node, and with
``max-hops`` 1 on the down-links district-b never hears from district-a.

Separate brokers must have distinct **cluster names** (``rabbitmqctl set_cluster_name
district-a``): the visited-node check compares cluster name + vhost, and containers
that all default to the same host name (and vhost "/") would look like one node, so a
district's records would be dropped before reaching its peers.

Routing keys: ``<kind>.<origin>.<type>``, e.g. ``case.district-a.Case.Published``
(kind = record kind: experience, case, activity, exemplar, problem, indicators;
origin = node id; type = event type, which itself contains dots); on
``qinglian.named`` prefixed by the recipient: ``city.case.district-a.Case.Published``.
Third-party subscribers bind a queue to ``qinglian.shared`` (or, at the city,
``qinglian.city``) on *their own node's* broker with, for example::

    case.#                         every case event, from every origin
    *.district-a.#                 everything district-a published
    #.JointProblem.Resolved        one event type, any kind and origin
    #                              everything this node receives on that exchange

(``contracts/federation/asyncapi.yaml`` is the stable description of these feeds.)

Binding keys propagate upstream through the links, so a node only receives what
something on it is bound to. Bodies are the signed envelope JSON
(``envelope.dumps``); receivers must verify and dedupe (links redeliver on restart).

Links are long-lived: ``link`` is idempotent and does not touch a link whose
definition is unchanged, and ``unlink`` (which deletes the upstream buffer queues) is
for decommissioning a node or taking it offline, not for restarts. A link that stops
or restarts keeps its buffer (``resource-cleanup-mode: never``: by default the plugin
deletes it, and what it holds, on every restart - ``BrokerAdmin.link``); the pull-based
gap repair (``GET /feed?after=N``) is the backstop.

Status needs the ``rabbitmq_federation_management`` plugin (``/api/federation-links``),
besides ``rabbitmq_federation`` and ``rabbitmq_management``.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote, urlparse, urlunparse

import requests

from .envelope import dumps, validate_node_id

log = logging.getLogger(__name__)

__all__ = [
    "SHARED_EXCHANGE",
    "CITY_EXCHANGE",
    "NAMED_EXCHANGE",
    "EXCHANGES",
    "UP_EXCHANGES",
    "down_exchanges",
    "named_for",
    "NAMED_FOR_PREFIX",
    "UP_MAX_HOPS",
    "DOWN_MAX_HOPS",
    "BrokerError",
    "BrokerAdmin",
    "NodeBroker",
    "Topology",
    "routing_key",
    "routing_key_for",
    "routes_for",
    "exchange_for",
    "message_for",
    "amqp_uri_for_vhost",
    "with_credentials",
    "vhost_of",
]

SHARED_EXCHANGE = "qinglian.shared"
CITY_EXCHANGE = "qinglian.city"
NAMED_EXCHANGE = "qinglian.named"
EXCHANGES = (SHARED_EXCHANGE, CITY_EXCHANGE, NAMED_EXCHANGE)
# district -> city: everything a district may send upwards
UP_EXCHANGES = (SHARED_EXCHANGE, CITY_EXCHANGE, NAMED_EXCHANGE)
NAMED_FOR_PREFIX = "qinglian.to."


def named_for(node_id: str) -> str:
    """The exchange carrying the named records addressed to ``node_id`` (module doc)."""
    return NAMED_FOR_PREFIX + validate_node_id(node_id, "node_id")


def down_exchanges(district: str) -> tuple[str, str]:
    """city -> district: ``qinglian.shared`` and the district's own named exchange;
    never ``qinglian.city`` (that is what keeps city-only records up)."""
    return (SHARED_EXCHANGE, named_for(district))


UP_MAX_HOPS = 1
DOWN_MAX_HOPS = 2
DEFAULT_API_URL = "http://127.0.0.1:15672"

_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")
_TYPE_WORD = re.compile(r"^[A-Za-z0-9_-]+$")


# ------------------------------------------------------------------- routing keys

def routing_key(kind: str, origin: str, type_: str) -> str:
    """``<kind>.<origin>.<type>``; each part is checked so wildcards cannot sneak in."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError("kind must be lower-case letters, digits, '_' or '-' (got %r)" % (kind,))
    validate_node_id(origin, "origin")
    words = type_.split(".") if isinstance(type_, str) else [""]
    if not all(_TYPE_WORD.match(w) for w in words):
        raise ValueError("type must be dot-separated words without '*' or '#' (got %r)" % (type_,))
    return "%s.%s.%s" % (kind, origin, type_)


def routing_key_for(envelope: Mapping[str, Any], kind: str | None = None) -> str:
    """The routing key of a signed envelope. Without ``kind``, the first word of the
    event type, lower-cased ("Case.Published" -> "case")."""
    type_ = envelope["type"]
    return routing_key(kind or type_.split(".", 1)[0].lower(), envelope["origin"], type_)


def exchange_for(envelope: Mapping[str, Any]) -> str:
    """Which exchange carries a record of this sharing level (module doc). ``node``
    has none: asking is a programming error, and it fails loudly."""
    sharing = envelope.get("sharing")
    if sharing == "all":
        return SHARED_EXCHANGE
    if sharing == "city":
        return CITY_EXCHANGE
    if sharing == "named":
        return NAMED_EXCHANGE
    raise ValueError("a %r record never leaves its node: there is no exchange for it"
                     % (sharing,))


def routes_for(envelope: Mapping[str, Any], kind: str | None = None) -> tuple[str, list[str]]:
    """(exchange, routing keys) to publish a signed envelope under. One key, except on
    ``qinglian.named``: one key per recipient other than the origin itself (a named
    record for nobody but its origin publishes nothing)."""
    exchange = exchange_for(envelope)
    key = routing_key_for(envelope, kind)
    if exchange != NAMED_EXCHANGE:
        return exchange, [key]
    recipients = sorted(set(envelope.get("recipients") or ()) - {envelope["origin"]})
    return exchange, ["%s.%s" % (validate_node_id(r, "recipient"), key) for r in recipients]


def message_for(envelope: Mapping[str, Any], kind: str | None = None) -> tuple[str, bytes, dict]:
    """(routing key, body, properties) to publish a signed envelope on qinglian.shared.

    ``message_id`` = event id lets any AMQP tool dedupe; messages are persistent.
    Property names are kombu's/py-amqp's (``delivery_mode``, ``content_type`` ...).
    """
    return routing_key_for(envelope, kind), dumps(envelope), message_properties(envelope)


def message_properties(envelope: Mapping[str, Any]) -> dict:
    return {
        "message_id": envelope["event_id"],
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "type": envelope["type"],
        "app_id": envelope["origin"],
    }


# ----------------------------------------------------------------------- AMQP URIs

def vhost_of(amqp_uri: str) -> str:
    """The vhost an AMQP URI names ("amqp://h:5672/district-a" -> "district-a";
    no path, or "/", -> the default vhost "/")."""
    path = urlparse(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def amqp_uri_for_vhost(base_uri: str, vhost: str) -> str:
    """``base_uri`` pointed at ``vhost`` (percent-encoded, so "/" becomes "%2F")."""
    u = urlparse(base_uri)
    return urlunparse(u._replace(path="/" + quote(vhost, safe="")))


# ------------------------------------------------------------------ management API

class BrokerError(Exception):
    """The management API refused or failed a request."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


# Answers worth asking again: the API is up but the broker behind it is busy or
# (re)starting its links. Anything else (400, 401, 404 ...) is the answer.
RETRY_STATUSES = (500, 502, 503, 504)


class BrokerAdmin:
    """One broker's management HTTP API (``rabbitmq_management``).

    Every call is retried with exponential back-off: a broker that is only slow (a busy
    machine, thousands of queues) gets a longer read deadline on each attempt, up to
    ``deadline`` seconds in all; answers in ``RETRY_STATUSES`` are asked again likewise;
    a refused connection (nothing listens: the broker is down or its management plugin
    restarting) only for ``connect_grace`` seconds, so a missing broker is reported at
    once. All calls are idempotent (GET, PUT, DELETE), so asking twice is harmless.
    """

    def __init__(self, api_url: str = DEFAULT_API_URL, user: str = "guest",
                 password: str = "guest", timeout: float = 15.0, *, deadline: float = 120.0,
                 connect_grace: float = 5.0):
        self.api_url = api_url.rstrip("/")
        self.user = user
        self.timeout = timeout
        self.deadline = deadline
        self.connect_grace = connect_grace
        self._http = requests.Session()
        self._http.auth = (user, password)
        self._http.headers["content-type"] = "application/json"

    @classmethod
    def for_node(cls, amqp_uri: str, api_url: str | None = None, **kw) -> "BrokerAdmin":
        """A node's broker API: ``api_url`` (the ``RABBITMQ_API_URL`` setting or
        ``--api``; its own ``user:password@`` if it has one, else the AMQP URI's), or,
        without it, derived from the AMQP URI (``from_amqp_uri``)."""
        if not api_url:
            return cls.from_amqp_uri(amqp_uri, **kw)
        a, u = urlparse(api_url), urlparse(amqp_uri)
        if a.scheme not in ("http", "https") or not a.hostname:
            raise ValueError("the management API URL must be http(s)://host:port, not %r" % api_url)
        netloc = a.hostname if ":" not in a.hostname else "[%s]" % a.hostname
        if a.port:
            netloc += ":%d" % a.port
        path = re.sub(r"/api/?$", "", a.path.rstrip("/"))
        user = a.username if a.username is not None else u.username
        password = a.password if a.username is not None else u.password
        return cls("%s://%s%s" % (a.scheme, netloc, path), unquote(user or "guest"),
                   unquote(password or "guest"), **kw)

    @classmethod
    def from_amqp_uri(cls, amqp_uri: str, api_port: int = 15672, **kw) -> "BrokerAdmin":
        """Same host and credentials as the AMQP URI, management port ``api_port``
        (https when the URI is amqps)."""
        u = urlparse(amqp_uri)
        scheme = "https" if u.scheme == "amqps" else "http"
        host = u.hostname or "127.0.0.1"
        if ":" in host:
            host = "[%s]" % host
        return cls("%s://%s:%d" % (scheme, host, api_port),
                   unquote(u.username or "guest"), unquote(u.password or "guest"), **kw)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing

    def _url(self, *parts: str) -> str:
        return self.api_url + "/api/" + "/".join(quote(p, safe="") for p in parts)

    def _call(self, method: str, *parts: str, json: Any = None, ok=(200, 201, 204),
              missing_ok: bool = False) -> Any:
        url = self._url(*parts)
        start = time.monotonic()
        attempt, pause = 0, 0.2
        while True:
            attempt += 1
            waited = time.monotonic() - start
            read_timeout = min(self.timeout * 2 ** (attempt - 1), max(self.deadline - waited, 1.0))
            status = None
            try:
                r = self._http.request(method, url, json=json, timeout=read_timeout)
            except requests.Timeout as exc:  # slow: ask again with a longer deadline
                failure, retry = "%s %s: no answer in %.0fs (%s)" % (method, url, read_timeout,
                                                                    type(exc).__name__), True
            except requests.ConnectionError as exc:  # nothing listens
                failure = "%s %s: cannot connect (%s)" % (method, url, _reason(exc))
                retry = waited + pause <= self.connect_grace
            except requests.RequestException as exc:
                raise BrokerError("%s %s: %s" % (method, url, exc)) from exc
            else:
                if r.status_code not in RETRY_STATUSES:
                    break
                status = r.status_code
                failure, retry = "%s %s -> %d %s" % (method, url, status, r.text[:300]), True
            if not retry or time.monotonic() - start + pause > self.deadline:
                raise BrokerError("%s (after %d attempts in %.0fs)"
                                  % (failure, attempt, time.monotonic() - start), status)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
        if missing_ok and r.status_code == 404:
            return None
        if r.status_code not in ok:
            raise BrokerError("%s %s -> %d %s" % (method, url, r.status_code, r.text[:300]),
                              r.status_code, r.text)
        if r.status_code == 204 or not r.content:
            return True
        return r.json()

    # ----------------------------------------------------------------- cluster name

    def cluster_name(self) -> str:
        return self._call("GET", "cluster-name")["name"]

    def set_cluster_name(self, name: str) -> None:
        """Federation's loop detection tells brokers apart by cluster name (+ vhost):
        separate brokers that kept the default (their host name, often identical in
        containers) look like one, and records stop at the city (module doc)."""
        self._call("PUT", "cluster-name", json={"name": name})

    # -------------------------------------------------------------- vhosts/exchange

    def ensure_vhost(self, name: str) -> None:
        """Create the vhost if missing and give this API user full permissions on it
        (the federation links log in as that user)."""
        self._call("PUT", "vhosts", name, json={})
        self._call("PUT", "permissions", name, self.user,
                   json={"configure": ".*", "write": ".*", "read": ".*"})

    def delete_vhost(self, name: str) -> bool:
        """Delete the vhost with everything in it (links included). False if absent."""
        return self._call("DELETE", "vhosts", name, missing_ok=True) is not None

    def declare_exchange(self, vhost: str, exchange: str = SHARED_EXCHANGE) -> None:
        """A federated exchange: topic (routing by kind/origin/type), durable (it must
        outlive broker restarts, the links and bindings hang on it)."""
        self._call("PUT", "exchanges", vhost, exchange, json={
            "type": "topic", "durable": True, "auto_delete": False, "internal": False,
            "arguments": {}})

    def declare_exchanges(self, vhost: str, exchanges: Iterable[str] = EXCHANGES) -> None:
        for exchange in exchanges:
            self.declare_exchange(vhost, exchange)

    # ---------------------------------------------------------------------- links

    @staticmethod
    def policy_name(exchange: str) -> str:
        return "qinglian-federate-" + exchange

    def upstreams(self, vhost: str) -> dict[str, dict]:
        """The federation upstreams defined in ``vhost``: name -> definition."""
        rows = self._call("GET", "parameters", "federation-upstream", vhost,
                          missing_ok=True) or []
        return {r["name"]: r["value"] for r in rows}

    def link(self, downstream_vhost: str, upstream_name: str, upstream_amqp_uri: str,
             exchange: str | Iterable[str] = SHARED_EXCHANGE, *, max_hops: int = 1,
             prefetch_count: int | None = None, reconnect_delay: int | None = None,
             ) -> bool:
        """Make ``downstream_vhost``'s ``exchange`` (one name or several) receive what is
        published to the same-named exchange at ``upstream_amqp_uri``. Returns True if
        anything changed.

        Two pieces, both in the downstream vhost: a ``federation-upstream`` parameter
        named ``upstream_name`` (ack-mode on-confirm: acked upstream only once confirmed
        downstream, the one mode that loses nothing), and one policy per exchange
        applying the implicit upstream set "all" — so adding a district adds an
        upstream and never rewrites the policy that carries the other links. Which
        exchanges a vhost federates is decided by which policies exist in it: a
        district gets no policy for ``qinglian.city``, so it has no link for it.
        Unchanged definitions are not re-sent: re-creating a link drops its buffer.
        """
        if not isinstance(max_hops, int) or max_hops < 1:
            raise ValueError("max_hops must be a positive integer")
        exchanges = [exchange] if isinstance(exchange, str) else list(exchange)
        value: dict[str, Any] = {
            "uri": upstream_amqp_uri,
            "ack-mode": "on-confirm",
            "max-hops": max_hops,
            "trust-user-id": False,
            # keep the upstream buffer queue when the link stops: by default the plugin
            # deletes it, with what it holds, whenever a link shuts down - a restart
            # included ({shutdown, restart}, which the plugin's own periodic check of
            # its upstream exchange causes when the broker is slow to answer). Under
            # load at 11 districts links restarted in waves and records vanished from
            # every queue (docs/scaling.md). ``unlink`` deletes the buffers itself.
            "resource-cleanup-mode": "never",
        }
        if prefetch_count is not None:
            value["prefetch-count"] = prefetch_count
        if reconnect_delay is not None:
            value["reconnect-delay"] = reconnect_delay
        changed = False
        if self.upstreams(downstream_vhost).get(upstream_name) != value:
            self.put_upstream(downstream_vhost, upstream_name, value)
            changed = True
        for ex in exchanges:
            policy = {
                "pattern": "^%s$" % re.escape(ex),
                "definition": {"federation-upstream-set": "all"},
                "priority": 10,
                "apply-to": "exchanges",
            }
            name = self.policy_name(ex)
            current = self._call("GET", "policies", downstream_vhost, name, missing_ok=True)
            if not current or any(current.get(k) != v for k, v in policy.items()):
                self._call("PUT", "policies", downstream_vhost, name, json=policy)
                changed = True
        return changed

    def put_upstream(self, vhost: str, name: str, value: dict) -> None:
        """Define (or redefine) one federation upstream as is."""
        self._call("PUT", "parameters", "federation-upstream", vhost, name, json={"value": value})

    def unlink(self, downstream_vhost: str, upstream_name: str,
               exchange: str | Iterable[str] = EXCHANGES) -> bool:
        """Remove one upstream, and its buffer queues on the upstream broker with what
        they hold (decommissioning, or a node taken offline: the links keep their
        buffers on a restart, ``link``, so they are deleted here - over AMQP as the
        link's own user, who may configure its buffers and nothing else). The
        exchanges' federation policies are removed with the last upstream."""
        exchanges = [exchange] if isinstance(exchange, str) else list(exchange)
        current = self.upstreams(downstream_vhost).get(upstream_name)
        removed = self._call("DELETE", "parameters", "federation-upstream", downstream_vhost,
                             upstream_name, missing_ok=True) is not None
        if current is not None:
            # every exchange this vhost federates (its policies), not only those named
            federated = {p["name"][len(self.policy_name("")):] for p in
                         self._call("GET", "policies", downstream_vhost, missing_ok=True) or []
                         if p.get("name", "").startswith(self.policy_name(""))}
            self._delete_buffers(current["uri"], downstream_vhost, sorted(set(exchanges) | federated))
        if not self.upstreams(downstream_vhost):
            for ex in exchanges:
                self._call("DELETE", "policies", downstream_vhost, self.policy_name(ex),
                           missing_ok=True)
        return removed

    def _delete_buffers(self, upstream_uri: str, downstream_vhost: str,
                        exchanges: Iterable[str]) -> None:
        """The plugin's buffer queue and internal exchange for each of ``exchanges`` on
        the upstream (named ``federation: <exchange> -> <this broker's cluster name>:
        <downstream vhost>:<exchange>``)."""
        from amqp.exceptions import AMQPError
        from kombu import Connection
        cluster = self.cluster_name()
        try:
            with Connection(upstream_uri, connect_timeout=10) as conn:
                conn.connect()
                for ex in exchanges:
                    name = "federation: %s -> %s:%s:%s" % (ex, cluster, downstream_vhost, ex)
                    for delete in ("queue_delete", "exchange_delete"):
                        channel = conn.channel()  # a refusal closes the channel
                        try:
                            getattr(channel, delete)(name)
                        except AMQPError:
                            pass  # absent, or not this link user's to delete
                        finally:
                            try:
                                channel.close()
                            except Exception:  # noqa: BLE001 - closed by the refusal
                                pass
        except AMQPError as exc:
            # refused: a link that could not log in made no buffer (``federation link``
            # removing a link that never ran); the link is gone all the same
            log.debug("federation: no buffers of %s's link deleted on %s (%s)",
                      downstream_vhost, vhost_of(upstream_uri), exc)
        except OSError as exc:
            log.warning("federation: the buffers of %s's link on %s were not deleted: the "
                        "upstream cannot be reached (%s)", downstream_vhost,
                        vhost_of(upstream_uri), exc)

    def link_status(self, vhost: str) -> list[dict]:
        """The federation links whose downstream is ``vhost``, as the plugin reports
        them: dicts with ``upstream``, ``exchange``, ``status`` ("starting", "running",
        "error" ...), ``error`` when failed, ``local_connection``, ``uri`` (no password),
        ``timestamp``. Needs the rabbitmq_federation_management plugin.

        The plugin answers 500 now and then while links of the vhost are being started
        or torn down (seen here right after ``apply``): ``_call`` asks again."""
        try:
            return self._call("GET", "federation-links", vhost)
        except BrokerError as exc:
            if exc.status == 404:
                raise BrokerError(
                    "no /api/federation-links: enable it with "
                    "`rabbitmq-plugins enable rabbitmq_federation_management`",
                    404, exc.body) from None
            raise

    def queues(self, vhost: str) -> list[dict]:
        """The vhost's queues as the broker reports them (``name``, ``messages_ready``,
        ``messages_unacknowledged``, ``consumers`` ...), for the node-status page."""
        return self._call("GET", "queues", vhost) or []

    def wait_for_links(self, vhost: str, upstreams: Iterable[str], timeout: float = 20.0,
                       exchange: str | Iterable[str] = SHARED_EXCHANGE) -> list[dict]:
        """Block until every named upstream of ``vhost`` has a running link for each
        ``exchange``; ``TimeoutError`` (with what was last seen) otherwise."""
        exchanges = {exchange} if isinstance(exchange, str) else set(exchange)
        wanted = {(u, ex) for u in upstreams for ex in exchanges}
        deadline = time.monotonic() + timeout
        while True:
            links = [l for l in self.link_status(vhost) if l.get("exchange") in exchanges]
            running = {(l.get("upstream"), l.get("exchange")) for l in links
                       if l.get("status") == "running"}
            if wanted <= running:
                return links
            if time.monotonic() >= deadline:
                seen = {"%s/%s" % (l.get("upstream"), l.get("exchange")):
                        (l.get("status"), l.get("error")) for l in links}
                raise TimeoutError("federation links of %r not running after %.0fs: "
                                   "wanted %s, seen %s" % (vhost, timeout, sorted(wanted), seen))
            time.sleep(0.1)

    # ----------------------------------------------------------- link users

    def ensure_user(self, user: str, password: str) -> None:
        """A broker user with no tags (no management access): a link's identity."""
        self._call("PUT", "users", user, json={"password": password, "tags": ""})

    def delete_user(self, user: str) -> bool:
        return self._call("DELETE", "users", user, missing_ok=True) is not None

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        """``user``'s permission patterns on ``vhost`` (shared.brokerusers uses it)."""
        self._call("PUT", "permissions", vhost, user,
                   json={"configure": configure, "write": write, "read": read})

    def grant_link_user(self, vhost: str, user: str, exchanges: Iterable[str],
                        downstream_vhost: str | None = None) -> None:
        """Permissions for a federation link's user on its upstream broker: read only
        ``exchanges``, and configure/write/read only the plugin's own buffer queue and
        exchange for those exchanges (named ``federation: <exchange> -> <cluster>:
        <downstream vhost>:<exchange>``; narrowed to ``downstream_vhost`` when given, so
        one link's user cannot touch another link's buffer). No tags: no management API."""
        names = "|".join(re.escape(ex) for ex in exchanges)
        own = "federation: (?:%s) -> %s" % (
            names, ".*:%s:" % re.escape(downstream_vhost) if downstream_vhost else "")
        self._call("PUT", "permissions", vhost, user, json={
            "configure": "^%s" % own, "write": "^%s" % own,
            "read": "^(?:%s.*|%s)$" % (own, names)})

    def grant_city_link_user(self, district_vhost: str, user: str,
                             city_vhost: str | None = None) -> None:
        """On a district's broker, the identity its city's up-link logs in with: the
        three exchanges a district sends up, nothing else of that broker."""
        self.grant_link_user(district_vhost, user, UP_EXCHANGES, city_vhost)

    def grant_district_link_user(self, city_vhost: str, user: str, district: str,
                                 district_vhost: str | None = None) -> None:
        """On the city's broker, the identity district ``district``'s down-link logs in
        with, allowed to pull no more than that district may see: ``qinglian.shared``
        and ``qinglian.to.<district>`` (module doc). Not ``qinglian.named``, where the
        records named for every node pass, nor ``qinglian.city``."""
        validate_node_id(district, "district")
        self.grant_link_user(city_vhost, user, down_exchanges(district), district_vhost)

    # ------------------------------------------------------- named records' route

    def bind_exchange(self, vhost: str, source: str, destination: str, key: str) -> None:
        """An exchange-to-exchange binding (the same binding twice is one binding)."""
        self._call("POST", "bindings", vhost, "e", source, "e", destination,
                   json={"routing_key": key, "arguments": {}}, ok=(201, 204))

    def route_named(self, vhost: str, district: str, at_city: bool) -> None:
        """The per-district named exchange (module doc): at the city, fed from
        ``qinglian.named`` with ``<district>.#``; at the district, feeding its local
        ``qinglian.named`` with everything the link brings."""
        exchange = named_for(district)
        self.declare_exchanges(vhost, (NAMED_EXCHANGE, exchange))
        if at_city:
            self.bind_exchange(vhost, NAMED_EXCHANGE, exchange, "%s.#" % district)
        else:
            self.bind_exchange(vhost, exchange, NAMED_EXCHANGE, "#")


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests ConnectionError ("Connection refused"), not
    urllib3's nested repr."""
    inner = exc
    while inner.__context__ is not None or getattr(inner, "reason", None) is not None:
        nxt = getattr(inner, "reason", None) or inner.__context__
        if nxt is inner or not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = getattr(inner, "strerror", None) or str(inner)
    return text.split(": ", 1)[-1] if "Errno" in text else text


# ------------------------------------------------------------------------ topology

@dataclass(frozen=True)
class NodeBroker:
    """Where one node's broker is: its node id, the AMQP URI its *peers' brokers* use
    to reach it (vhost included, credentials of the link user), and its management
    API (derived from that URI when not given)."""

    node_id: str
    amqp_uri: str
    admin: BrokerAdmin | None = None

    @property
    def vhost(self) -> str:
        return vhost_of(self.amqp_uri)

    @property
    def api(self) -> BrokerAdmin:
        return self.admin or BrokerAdmin.from_amqp_uri(self.amqp_uri)


class Topology:
    """City <-> each district; districts reach each other via the city.

    In the city's broker, one upstream per district, named after the district's node
    id, applied to ``up_exchanges``; in each district's broker, one upstream named
    after the city's node id, applied to that district's ``down_exchanges`` (never
    ``qinglian.city``), with the route of its named records (``route_named``).
    ``apply()`` is idempotent and leaves existing, unchanged links alone, so it is also
    how a district is added to a running city.

    ``link_users`` (default): each link logs in as its own user, made here on the
    upstream broker with ``grant_*_link_user`` and a random password, instead of the
    credentials in the ``NodeBroker``'s URI (which are the admin's, for the management
    API). A link already defined with that user is left as it is, password included;
    ``delete_link_users`` removes them with the network.

    ``exchange`` (one name) is kept for callers that federate a single exchange both
    ways (tests of the plugin's behaviour); it overrides both sets.
    """

    def __init__(self, city: NodeBroker, districts: Iterable[NodeBroker],
                 exchange: str | None = None, *, up_exchanges: Iterable[str] = UP_EXCHANGES,
                 up_max_hops: int = UP_MAX_HOPS, down_max_hops: int = DOWN_MAX_HOPS,
                 link_users: bool = True):
        self.city = city
        self.districts = {d.node_id: d for d in districts}
        if city.node_id in self.districts:
            raise ValueError("the city cannot also be one of its districts")
        self.single = exchange
        self.up_exchanges = (exchange,) if exchange is not None else tuple(up_exchanges)
        self.up_max_hops = up_max_hops
        self.down_max_hops = down_max_hops
        self.link_users = link_users
        self._apis: dict[str, BrokerAdmin] = {}

    def down_exchanges(self, district: str) -> tuple[str, ...]:
        return (self.single,) if self.single is not None else down_exchanges(district)

    def exchanges(self, node: NodeBroker) -> tuple[str, ...]:
        """Every exchange a node's links touch (declared before linking)."""
        if self.single is not None:
            return (self.single,)
        names = list(self.up_exchanges)
        for d in ([node.node_id] if node.node_id in self.districts else self.districts):
            names.extend(self.down_exchanges(d))
        return tuple(dict.fromkeys(names))

    def _api(self, node: NodeBroker) -> BrokerAdmin:
        # one HTTP session per node, not one per call
        if node.node_id not in self._apis:
            self._apis[node.node_id] = node.api
        return self._apis[node.node_id]

    def nodes(self) -> list[NodeBroker]:
        return [self.city, *self.districts.values()]

    def apply(self) -> None:
        """Declare the exchanges on every node, then link (exchanges first: a policy
        only starts links for exchanges that exist)."""
        for node in self.nodes():
            self._api(node).declare_exchanges(node.vhost, self.exchanges(node))
        for district in self.districts.values():
            self._link_pair(district)

    # -- link users -------------------------------------------------------------------
    @staticmethod
    def link_user_name(upstream: NodeBroker, downstream: NodeBroker) -> str:
        """Broker users are per broker, not per vhost: the upstream's vhost is part of
        the name where several nodes share one broker (tests, the demo)."""
        if upstream.vhost == "/":
            return "ql-link-%s" % downstream.node_id
        return "%s.link.%s" % (upstream.vhost, downstream.node_id)

    def _link_uri(self, upstream: NodeBroker, downstream: NodeBroker) -> str:
        """The URI ``downstream``'s link uses to reach ``upstream``."""
        if not self.link_users:
            return upstream.amqp_uri
        user = self.link_user_name(upstream, downstream)
        current = self._api(downstream).upstreams(downstream.vhost).get(upstream.node_id)
        if current and unquote(urlparse(current.get("uri", "")).username or "") == user \
                and vhost_of(current["uri"]) == upstream.vhost:
            return current["uri"]  # unchanged: re-creating the link would drop its buffer
        password = secrets.token_urlsafe(24)
        api = self._api(upstream)
        api.ensure_user(user, password)
        if upstream is self.city:
            api.grant_link_user(upstream.vhost, user, self.down_exchanges(downstream.node_id),
                                downstream.vhost)
        else:
            api.grant_link_user(upstream.vhost, user, self.up_exchanges, downstream.vhost)
        return with_credentials(upstream.amqp_uri, user, password)

    def delete_link_users(self) -> None:
        if not self.link_users:
            return
        for d in self.districts.values():
            for upstream, downstream in ((self.city, d), (d, self.city)):
                try:
                    self._api(upstream).delete_user(self.link_user_name(upstream, downstream))
                except BrokerError:
                    pass  # the broker is away: nothing more to do at teardown

    def _link_pair(self, district: NodeBroker) -> None:
        down = self.down_exchanges(district.node_id)
        if self.single is None:
            self._api(self.city).route_named(self.city.vhost, district.node_id, at_city=True)
            self._api(district).route_named(district.vhost, district.node_id, at_city=False)
        # the city pulls what district publishes ...
        self._api(self.city).link(self.city.vhost, district.node_id,
                                  self._link_uri(district, self.city),
                                  self.up_exchanges, max_hops=self.up_max_hops)
        # ... and the district pulls the city's, which includes its peers' records
        self._api(district).link(district.vhost, self.city.node_id,
                                 self._link_uri(self.city, district),
                                 down, max_hops=self.down_max_hops)

    def add_district(self, district: NodeBroker) -> None:
        if district.node_id == self.city.node_id:
            raise ValueError("the city cannot also be one of its districts")
        self.districts[district.node_id] = district
        self._api(district).declare_exchanges(district.vhost, self.exchanges(district))
        self._api(self.city).declare_exchanges(self.city.vhost, self.exchanges(self.city))
        self._link_pair(district)

    def remove_district(self, node_id: str) -> None:
        """Decommission: remove both links of one district (what is queued is lost)."""
        district = self.districts[node_id]
        self._api(self.city).unlink(self.city.vhost, node_id, self.up_exchanges)
        self._api(district).unlink(district.vhost, self.city.node_id,
                                   self.down_exchanges(node_id))
        for upstream, downstream in ((self.city, district), (district, self.city)):
            if self.link_users:
                self._api(upstream).delete_user(self.link_user_name(upstream, downstream))
        del self.districts[node_id]

    def status(self) -> dict[str, list[dict]]:
        """node id -> that node's incoming links (see ``BrokerAdmin.link_status``)."""
        return {n.node_id: [l for l in self._api(n).link_status(n.vhost)
                            if l.get("exchange") in self.exchanges(n)]
                for n in self.nodes()}

    def wait_running(self, timeout: float = 20.0) -> None:
        """Block until every link of the star runs (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        self._api(self.city).wait_for_links(self.city.vhost, self.districts, timeout,
                                            self.up_exchanges)
        for d in self.districts.values():
            self._api(d).wait_for_links(d.vhost, [self.city.node_id],
                                        max(0.1, deadline - time.monotonic()),
                                        self.down_exchanges(d.node_id))


def with_credentials(amqp_uri: str, user: str, password: str) -> str:
    """``amqp_uri`` logging in as ``user`` (both percent-encoded)."""
    u = urlparse(amqp_uri)
    host = u.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    netloc = "%s:%s@%s%s" % (quote(user, safe=""), quote(password, safe=""), host,
                             ":%d" % u.port if u.port else "")
    return urlunparse(u._replace(netloc=netloc))
