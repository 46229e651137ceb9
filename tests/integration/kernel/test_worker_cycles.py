"""A finished worker leaves nothing for the cyclic collector (``NodeContainer._run_worker``).

nameko's RPC proxy holds its worker's context, which holds the worker's service
instance, which holds the proxy: each request left that cycle behind, and the console's
young collections - a pause of every green thread - came every few hundred requests in
the morning's check-ins. Here a real container with a real ``RpcProxy`` (on the test's
vhost) answers HTTP requests; the collector, kept off meanwhile, then finds none of
their worker contexts unreachable.
"""
from __future__ import annotations

import gc

import requests
from nameko.containers import WorkerContext
from nameko.rpc import RpcProxy
from nameko.web.handlers import http

from shared.service import NodeContainer


class CycleService:
    name = "cycles"
    other = RpcProxy("nobody")  # a real proxy: its ServiceProxy holds the worker's context

    @http("GET", "/ping")
    def ping(self, request):
        return "pong %s" % type(self.other).__name__


def test_finished_workers_leave_no_cycle(node_config):
    container = NodeContainer(CycleService, node_config)
    container.start()
    url = "http://%s/ping" % node_config["WEB_SERVER_ADDRESS"]
    try:
        with requests.Session() as s:
            assert s.get(url, timeout=30).text == "pong ServiceProxy"  # warm: connections made
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)  # the unreachable kept in gc.garbage, to be named
            try:
                for _ in range(30):
                    assert s.get(url, timeout=30).status_code == 200
                gc.collect()
                left = [o for o in gc.garbage if isinstance(o, (WorkerContext, CycleService))]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
    finally:
        container.stop()
    assert left == []
