"""A stand-in service for test_max_workers: named like the console, so ``nameko run``
gives it CONSOLE_MAX_WORKERS workers; ``/hold/<n>`` holds its worker until n are held
at once, then answers how many were."""
import json

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http


class Gate(DependencyProvider):
    def setup(self):
        self.inside = self.most = 0
        self.full = Event()

    def start(self):
        # the hub wakes now and then, as a real service's timers make it: nameko run's
        # SIGTERM handler only spawns the stop, which an idle hub would never run
        self.container.spawn_managed_thread(self._tick)

    def _tick(self):
        while True:
            eventlet.sleep(0.2)

    def get_dependency(self, worker_ctx):
        return self


class PoolService:
    name = "console"
    gate = Gate()

    @http("GET", "/pool")
    def pool(self, request):
        container = self.gate.container
        return json.dumps({"container": container.__class__.__name__,
                           "max_workers": container.max_workers})

    @http("GET", "/hold/<int:n>")
    def hold(self, request, n):
        gate = self.gate
        gate.inside += 1
        gate.most = max(gate.most, gate.inside)
        if gate.inside >= n and not gate.full.ready():
            gate.full.send()
        gate.full.wait()
        gate.inside -= 1
        return str(gate.most)
