"""A service process runs the workers its <SERVICE>_MAX_WORKERS says: ``nameko run`` with
deploy/config.yaml (nameko's own runner, its SERVICE_CONTAINER_CLS), not a container
built by hand. The unit tests (tests/unit/kernel/test_max_workers.py) parse the setting."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from nameko.testing.utils import find_free_port

from shared import config
from tests.harness import wait_for

ROOT = Path(__file__).resolve().parents[3]
TARGET = "tests.integration.kernel._pool_service:PoolService"


def nameko_run(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in config.ENV_VARS}
    clean.update(QINGLIAN_VAR=str(tmp_path / "var"), PYTHONWARNINGS="ignore", **env)
    with open(tmp_path / "service.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "deploy" / "config.yaml"),
             TARGET], cwd=ROOT, env=clean, stdout=subprocess.DEVNULL, stderr=log)


def test_a_running_service_has_its_own_workers(tmp_path):
    workers = 12  # more than nameko's default 10, fewer than the console's 64
    address = "127.0.0.1:%d" % find_free_port()
    proc = nameko_run(tmp_path, CONSOLE_MAX_WORKERS=str(workers), WEB_SERVER_ADDRESS=address)
    try:
        def up():
            assert proc.poll() is None, (tmp_path / "service.log").read_text()[-2000:]
            try:
                return requests.get("http://%s/pool" % address, timeout=5).json()
            except requests.RequestException:
                return None
        assert wait_for(up, timeout=60) == {"container": "NodeContainer", "max_workers": workers}
        # all twelve requests are in a worker at once: each is answered only when the
        # twelfth has arrived (with ten workers the last two would wait for a free one)
        with ThreadPoolExecutor(workers) as pool:
            held = list(pool.map(
                lambda _: requests.get("http://%s/hold/%d" % (address, workers), timeout=120).text,
                range(workers)))
        assert held == [str(workers)] * workers
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_bad_setting_stops_the_service_at_start(tmp_path):
    proc = nameko_run(tmp_path, CONSOLE_MAX_WORKERS="0",
                      WEB_SERVER_ADDRESS="127.0.0.1:%d" % find_free_port())
    assert proc.wait(120) != 0
    assert "CONSOLE_MAX_WORKERS 应为不小于 1 的整数（当前为 '0'）" in (tmp_path / "service.log").read_text()
