"""docs/examples/shared_feed_consumer.py runs against a real node and does what the
AsyncAPI document says: binds on its own node, verifies, dedupes."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from shared.federation.envelope import public_key_b64
from shared.federation.keys import load_node_key

EXAMPLE = Path(__file__).resolve().parents[4] / "docs" / "examples" / "shared_feed_consumer.py"


def test_example_consumer_follows_district_b_feed(network):
    a, b = network["district-a"], network["district-b"]
    key = public_key_b64(load_node_key(a.local.config))
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--amqp", b.local.amqp_uri, "--binding", "case.#",
         "--queue", "example-test", "--public-key", "district-a=%s" % key, "--max", "1",
         "--idle-timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening" in proc.stdout.readline()
        time.sleep(0.5)
        a.execute("post_problem", {"problem_id": "not-a-case", "unit_id": "a-gw", "title": "t",
                                   "context": "c", "deadline": "2031-12-31",
                                   "share": {"sharing": "all", "recipients": []}})
        a.execute("compile_case", {"case_id": "for-the-example", "unit_id": "a-xj",
                                   "title": "示例订阅者看到的案例", "category": "c", "summary": "s",
                                   "facts": "f", "analysis": "a", "lessons": ["l"],
                                   "share": {"sharing": "all", "recipients": []}})
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    line = [l for l in out.splitlines() if "Case.Published" in l][0]
    assert line.startswith("verified") and "district-a/for-the-example" in line
    assert "JointProblem" not in out  # bound to case.# only
