"""How a client sees its worker end, and which command-line flags a worker takes for itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vgi_rpc.transports.subprocess import wait_exit
from vgi_rpc.worker import access_log_option, external_options, http_options


def test_wait_exit_returns_the_exit_code() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert wait_exit(proc, 10) == 3
    assert wait_exit(proc, 10) == 3  # reaped: asked again, the same answer


def test_wait_exit_gives_up_after_its_timeout_and_leaves_the_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(proc, 0.05)
        assert proc.poll() is None
    finally:
        proc.kill()
        assert wait_exit(proc, 10) < 0


def test_wait_exit_sees_a_killed_worker() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc.kill()
    assert wait_exit(proc, 10) == -9


@pytest.mark.parametrize("argv", [[], ["--verbose", "x"], ["--a", "log.jsonl"], ["--h", "3"], ["--ext", "b"]])
def test_a_worker_takes_no_flags_that_are_not_its_own(argv: list[str]) -> None:
    # argparse would take "--a" for "--access-log" and "--h" for "--http": the worker's own flags
    # are only ever the whole names, and other arguments stay the script's
    assert access_log_option(argv) is None
    assert http_options(argv) is None
    assert external_options(argv) is None


def test_a_worker_reads_its_own_flags() -> None:
    assert access_log_option(["--access-log", "a.jsonl"]) == "a.jsonl"
    assert access_log_option(["--access-log=b.jsonl"]) == "b.jsonl"
    http = http_options(["x", "--http", "8080", "--prefix", "/p"])
    assert http is not None and (http.http, http.prefix) == (8080, "/p")
    external = external_options(["--external-s3-bucket", "b", "--external-s3-endpoint", "http://127.0.0.1:9"])
    assert external is not None and external.externalize_threshold_bytes == 1_048_576
