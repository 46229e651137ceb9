"""A relay in its own process, to be killed with SIGKILL: `python -m tests.integration.kernel._relay_process DB AMQP`."""
import sys

from shared.db import make_engine
from shared.relay import Relay
from shared.store import EventStore

if __name__ == "__main__":
    relay = Relay(EventStore(make_engine(sys.argv[1])), sys.argv[2], "relaysource", batch_size=25)
    relay.run(lambda: False, lambda s: __import__("time").sleep(s), idle_wait=0.01)
