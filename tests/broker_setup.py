"""Before any test: the broker has the plugins the suite needs, or the run stops at once.

``make test`` on a broker with only its default plugins would otherwise fail test after
test (the management API refused). Where the broker is local and this user may manage
it (root or the rabbitmq user, and ``rabbitmq-plugins`` is installed) the missing
plugins are enabled, which is all a fresh Debian ``rabbitmq-server`` lacks; anywhere else
the run stops with one line saying which plugins to enable and how. A broker that
already has them (this machine's) is only looked at.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from typing import Callable, Iterable
from urllib.parse import urlparse

import requests

from tests.brokernode import NEEDED_PLUGINS
from tests.harness import wait_for


class BrokerNotReady(Exception):
    """One line: what is missing and the command that fixes it."""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def running_plugins(api_url: str, auth=("guest", "guest")) -> set[str] | None:
    """The plugins running on the broker's node(s), or None if its API does not answer."""
    try:
        r = requests.get(api_url.rstrip("/") + "/api/nodes", auth=auth, timeout=15)
    except requests.RequestException:
        return None
    if r.status_code != 200:
        return None
    return {app["name"] for node in r.json() for app in node.get("applications", [])}


def missing_plugins(amqp_uri: str, api_url: str, needed: Iterable[str] = NEEDED_PLUGINS) -> list[str]:
    u = urlparse(amqp_uri)
    host, port = u.hostname or "localhost", u.port or 5672
    if not _answers(host, port):
        raise BrokerNotReady("RabbitMQ is not answering at %s:%d: start it (`rabbitmq-server -detached`, "
                             "or `.ci/run` does it) and run the tests again" % (host, port))
    running = running_plugins(api_url, (u.username or "guest", u.password or "guest"))
    if running is None:  # no management API: the plugin itself is missing (or more)
        return list(needed)
    return [p for p in needed if p not in running]


def local_enabler(amqp_uri: str) -> Callable[[list[str]], None] | None:
    """How to enable plugins on this machine's broker, if it is local and ours to manage."""
    host = urlparse(amqp_uri).hostname or "localhost"
    tool = shutil.which("rabbitmq-plugins")
    me = pwd.getpwuid(os.getuid()).pw_name
    if host not in ("localhost", "127.0.0.1", "::1") or not tool or me not in ("root", "rabbitmq"):
        return None

    def enable(plugins: list[str]) -> None:
        subprocess.run([tool, "enable", *plugins], check=True, capture_output=True, timeout=180)
    return enable


def ensure_plugins(amqp_uri: str, api_url: str, enable: Callable[[list[str]], None] | None,
                   needed: Iterable[str] = NEEDED_PLUGINS, wait: float = 120.0) -> list[str]:
    """Enable what is missing with ``enable`` (None: may not) and wait for it to run;
    returns what was enabled. ``BrokerNotReady`` (one line) when that is not possible."""
    needed = list(needed)
    missing = missing_plugins(amqp_uri, api_url, needed)
    if not missing:
        return []
    how = "rabbitmq-plugins enable %s" % " ".join(missing)
    if enable is None:
        raise BrokerNotReady("RabbitMQ at %s lacks the plugin(s) %s: run `sudo %s` on its host, then the "
                             "tests again" % (urlparse(amqp_uri).netloc.split("@")[-1], ", ".join(missing), how))
    try:
        enable(missing)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, RuntimeError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise BrokerNotReady("could not enable %s (`%s`): %s" % (", ".join(missing), how,
                                                                 " ".join(str(detail).split())[:300])) from None
    try:
        wait_for(lambda: not missing_plugins(amqp_uri, api_url, needed), wait, 1.0,
                 "the plugins %s running" % ", ".join(missing))
    except AssertionError:
        raise BrokerNotReady("enabled %s, but they are not running after %.0fs"
                             % (", ".join(missing), wait)) from None
    return missing
