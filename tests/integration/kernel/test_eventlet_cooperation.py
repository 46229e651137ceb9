"""psycopg2 cooperates with eventlet once monkey-patched (as `nameko run` does): N
workers each waiting in SQL finish in about one wait, not N. A blocking driver would
serialise them - and every nameko worker of the service with them."""
import time

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from shared.app import Application
from shared.service import NodeService

WAIT, WORKERS = 0.5, 8


class SleepyService(NodeService):
    name = "sleepy"
    app = Application("sleepy")

    @rpc
    def wait_in_sql(self, seconds):
        with self.store.read() as conn:
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return seconds


def test_workers_waiting_in_postgresql_run_concurrently(container_factory, node_config, pg_url):
    node_config["SLEEPY_DATABASE_URL"] = pg_url
    node_config["QINGLIAN_RELAY"] = "off"
    container = container_factory(SleepyService, node_config)
    container.start()
    with ClusterRpcProxy(node_config) as n:
        n.sleepy.wait_in_sql(0.01)  # warm the pool and the reply queue
        start = time.perf_counter()
        replies = [n.sleepy.wait_in_sql.call_async(WAIT) for _ in range(WORKERS)]
        assert [r.result() for r in replies] == [WAIT] * WORKERS
        elapsed = time.perf_counter() - start
    # serialised would be WORKERS * WAIT = 4 s; cooperative is ~0.5 s plus overhead
    assert elapsed < WORKERS * WAIT / 2, "workers were serialised: %.2fs" % elapsed
