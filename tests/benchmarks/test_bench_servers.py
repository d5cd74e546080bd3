"""The benchmarks' servers: a service is measured once every worker asked for is up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from leadscore.benchmarks.servers import Server, _wait_workers

LINE = "2026-12-04T22:15:33+0000 [INFO] [entry_service:leadscore:{}] Service leadscore initialized\n"


@pytest.fixture
def server(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield Server("service", "http://127.0.0.1:1", process, tmp_path / "service.log")
    process.kill()
    process.wait()


def test_it_waits_for_each_worker_the_log_says_is_up(server):
    server.log.write_text(LINE.format(1) + "[entry_service:leadscore:1] champion moved\n" + LINE.format(2))
    assert _wait_workers(server, 2, timeout_s=1) == {"1", "2"}


def test_one_worker_up_of_two_is_not_enough(server):
    server.log.write_text(LINE.format(1) + LINE.format(1))  # the same worker twice (a restart)
    with pytest.raises(RuntimeError, match="not all of its 2 workers started"):
        _wait_workers(server, 2, timeout_s=0.3)
