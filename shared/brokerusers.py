"""Each service of a node logs in to the node's broker as its own user.

With one shared login, anything that reached the broker could publish to any
``<service>.events`` exchange, and the exchange service signed and shared it (a fake
``UnitIndicators.Published`` reached the city). Now each service has a broker user,
``ql-<node>-<service>`` (``ql-<vhost>-<service>`` when the node is a vhost of a shared
broker, as in tests and the local network: user names are broker-wide), whose permissions on the node's vhost are:

* **write** (publish, bind a queue): only its own ``<service>.events``, the RPC exchange
  (requests and replies; an RPC call still needs a token, see shared.auth) and its own
  queues; the exchange service also the federation exchanges ``qinglian.*``. So only
  the units service can put an event on ``units.events``: the broker refuses anyone else
  (ACCESS_REFUSED closes the channel), whatever they publish.
* **read** (consume, bind from): every ``<service>.events`` (services react to each
  other's events), the RPC exchange, and its own queues only.
* **configure** (declare): what it reads or writes - nameko and kombu declare the
  exchanges they use before using them.

Own queues are nameko's names for them: ``rpc-<service>``, ``rpc.reply-<service>-<uuid>``
and ``evt-<source>-<type>--<service>.<method>``.

The broker also stamps who published: each relay sets a message's ``user_id`` to its
login, which RabbitMQ checks against the connection's user (a mismatch is refused), so
a consumer that must trust the source - the exchange service, which signs and shares
other services' figures - checks it too (``OwnedEventHandler``, ``owner_login``): even
a message published with the broker's admin login is not taken for the owner's.

Passwords are made here, once, and kept under ``<QINGLIAN_VAR>/<node>/broker/`` (mode
0600); ``qinglian run`` gives each service process an ``AMQP_URI`` with its own login
(``service_amqp_uri``). ``qinglian node broker-users`` (re)applies users and permissions.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from nameko.events import EventHandler

from shared import config, registry
from shared.federation.broker import BrokerAdmin, vhost_of, with_credentials

RPC_EXCHANGE = "nameko-rpc"


def user_name(cfg: dict | None, service: str) -> str:
    vhost = vhost_of(config.amqp_uri(cfg))
    return "ql-%s-%s" % (config.node_id(cfg) if vhost == "/" else vhost, service)


def permissions(service: str) -> dict[str, str]:
    """The three permission patterns of ``service``'s user on its node's vhost."""
    s = re.escape(service)
    own = r"rpc-{s}|rpc\.reply-{s}-[0-9a-f-]+|evt-[^-]+-.+--{s}\..+".format(s=s)
    if service == "exchange":  # the federation exchanges and the exchange's own queues
        own += r"|qinglian\..+"
    events = r"[a-z][a-z0-9_]*\.events"
    return {"configure": "^(%s|%s|%s)$" % (events, re.escape(RPC_EXCHANGE), own),
            "write": r"^(%s\.events|%s|%s)$" % (s, re.escape(RPC_EXCHANGE), own),
            "read": "^(%s|%s|%s)$" % (events, re.escape(RPC_EXCHANGE), own)}


def _secret_file(cfg: dict | None, service: str) -> Path:
    return config.var_dir(cfg) / config.node_id(cfg) / "broker" / ("%s.secret" % service)


def service_amqp_uri(service: str, cfg: dict | None = None) -> str:
    """The node's ``AMQP_URI`` logging in as ``service``'s own user once the node has
    broker users (``provision``), else the node's ``AMQP_URI`` as it is."""
    uri = config.amqp_uri(cfg)
    path = _secret_file(cfg, service)
    if not path.exists():
        return uri
    return with_credentials(uri, user_name(cfg, service),
                            path.read_text(encoding="utf-8").strip())


def owner_login(service: str, cfg: dict | None = None) -> str | None:
    """The only login that may publish ``service``'s events on this node; None when the
    node has no service users yet (every process shares the node's one login)."""
    return user_name(cfg, service) if _secret_file(cfg, service).exists() else None


PUBLISHER = "qinglian.publisher"  # worker context key: the broker-checked user_id


class OwnedEventHandler(EventHandler):
    """``@event_handler`` that also gives the worker, as ``PUBLISHER`` in its context
    data, the ``user_id`` the broker checked - set after the headers are unpacked, so no
    header can claim it."""

    def unpack_message_headers(self, message):
        data = super().unpack_message_headers(message)
        data[PUBLISHER] = message.properties.get("user_id")
        return data


owned_event_handler = OwnedEventHandler.decorator


def provision(admin: BrokerAdmin, cfg: dict | None = None,
              services=None) -> dict[str, str]:
    """Create (or bring up to date) every process's broker user on the node's vhost
    (``services``: these only); returns each one's AMQP URI. A password already made is kept."""
    vhost = vhost_of(config.amqp_uri(cfg))
    uris = {}
    for service in registry.names() if services is None else services:
        path = _secret_file(cfg, service)
        if path.exists():
            password = path.read_text(encoding="utf-8").strip()
        else:
            password = secrets.token_urlsafe(24)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(password)
        user = user_name(cfg, service)
        admin.ensure_user(user, password)
        admin.set_permissions(vhost, user, **permissions(service))
        uris[service] = service_amqp_uri(service, cfg)
    return uris


def remove(admin: BrokerAdmin, cfg: dict | None = None, services=None) -> None:
    """Delete the node's service users and their passwords (a node taken down)."""
    for service in registry.names() if services is None else services:
        admin.delete_user(user_name(cfg, service))
        _secret_file(cfg, service).unlink(missing_ok=True)


if __name__ == "__main__":  # deploy/entrypoint.sh: `python -m shared.brokerusers <service>`
    import sys
    print(service_amqp_uri(sys.argv[1]))
