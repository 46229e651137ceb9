"""What the node-wide tools share when they run nodes as processes on this machine
(``qinglian demo``, ``demo --districts N``, the benchmarks): an admin's HTTP client for one
service of one node, and stopping the process groups they started."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import requests


class NodeApi:
    """One service of one node over its HTTP API, as the node's admin. A tool names its
    own error (``error``), so its callers catch one type."""

    error: type[Exception] = RuntimeError

    def __init__(self, node: str, base: str, token: str):
        self.node, self.base = node, base
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer %s" % token

    def post(self, command: str, data: dict, timeout: float = 30.0,
             retry_missing: float = 0.0) -> dict:
        deadline = time.monotonic() + retry_missing
        while True:
            r = self.http.post("%s/api/%s" % (self.base, command), json=data, timeout=timeout)
            if r.status_code < 300:
                return r.json()
            # a unit registered a moment ago may not be mirrored into this service yet
            if r.status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise self.error("%s %s at %s -> %d %s"
                             % (command, data, self.node, r.status_code, r.text[:300]))

    def get(self, query: str, **params) -> dict | None:
        r = self.http.get("%s/api/%s" % (self.base, query), params=params, timeout=30)
        if r.status_code == 404:
            return None
        if r.status_code >= 300:
            raise self.error("%s at %s -> %d %s" % (query, self.node, r.status_code, r.text[:300]))
        return r.json()


def stop_process_groups(procs: list[subprocess.Popen], sig: int = signal.SIGTERM,
                        grace: float = 20.0) -> None:
    """Signal each process's group (a ``nameko run`` and what it started), give them all
    ``grace`` seconds together, then kill what is left."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
