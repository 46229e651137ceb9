"""bench.common.OpenLoop, the load generator of the console's check-in burst: requests go
out on their schedule whatever the answers, latency counts from when each was due, and
a request is never sent twice."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.common import OpenLoop


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(body)
        if self.path == "/slow":
            time.sleep(0.3)
        if self.path == "/drop":
            self.close_connection = True
            self.wfile.flush()
            return  # no answer: the connection just closes
        self.send_response(303)
        self.send_header("Set-Cookie", "ql_flash=ok; Path=/")
        self.send_header("Set-Cookie", "other=1; Path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_open_loop_keeps_its_schedule_and_counts_from_due():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Handler.seen = []
    try:
        port = server.server_address[1]
        jobs = [("POST", "/slow" if i == 0 else ("/drop" if i == 5 else "/"), "n=%d" % i, {})
                for i in range(40)]
        results, offered = OpenLoop(port, 100.0, 8).run(jobs)
    finally:
        server.shutdown()
    assert offered > 50  # 100/s intended (a loaded machine slows the server): the slow one held no other
    assert [r[0] for r in results].count(303) == 39 and results[5][0] == 0
    assert results[1][1]["set-cookie"] == ["ql_flash=ok; Path=/", "other=1; Path=/"]
    assert results[0][3] >= 300  # from due: the slow answer in full
    assert sorted(_Handler.seen) == sorted(b"n=%d" % i for i in range(40))  # each sent once
