"""The reference runner with --url against our conformance worker's --http mode, counts pinned.

As 0.52.2's own HTTP worker scores: without a cap 106 passed / 7 skipped (the six
http_response_cap tests, and large_payload.echo_binary_over_int32_max, which the runner runs on
pipes only); with --max-response-bytes 8388608, 110 passed / 3 skipped (the two cap tests that
need external storage, and the same pipe-only test).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.http.servers import run_url_runner, spawn_port_printer, stop

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
PIPE_ONLY = "large_payload.echo_binary_over_int32_max"
CAP_TESTS = {
    "http_response_cap.unary_strict_fail",
    "http_response_cap.exchange_strict_fail",
    "http_response_cap.producer_lockstep",
    "http_response_cap.producer_strict_fail",
    "http_response_cap.producer_external_strict_fail",
    "http_response_cap.externalized_strict_fail",
}
EXTERNAL_CAP_TESTS = {"http_response_cap.producer_external_strict_fail", "http_response_cap.externalized_strict_fail"}


def _runner(peer_python: Path, tmp_path: Path, *worker_args: str) -> dict[str, Any]:
    whoami = tmp_path / "whoami.txt"
    cmd = [sys.executable, "-m", "vgi_rpc.conformance", "--http", "0", "--whoami-file", str(whoami), *worker_args]
    proc, port = spawn_port_printer(cmd, cwd=tmp_path)
    try:
        report = run_url_runner(peer_python, port, tmp_path)
    finally:
        stop(proc)
    assert Path(whoami.read_text()).resolve() == (ROOT / "vgi_rpc" / "__init__.py").resolve()
    return report


def _failures(report: dict[str, Any]) -> str:
    return "\n".join(f"{r['name']}: {r['error']}" for r in report["results"] if not r["passed"] and not r["skipped"])


def test_runner_over_http_without_a_cap(peer_python: Path, tmp_path: Path) -> None:
    report = _runner(peer_python, tmp_path)
    assert report["failed"] == 0, _failures(report)
    assert {r["name"] for r in report["results"] if r["skipped"]} == CAP_TESTS | {PIPE_ONLY}
    assert (report["passed"], report["skipped"]) == (106, 7)


def test_runner_over_http_with_an_8_mib_cap(peer_python: Path, tmp_path: Path) -> None:
    report = _runner(peer_python, tmp_path, "--max-response-bytes", "8388608")
    assert report["failed"] == 0, _failures(report)
    assert {r["name"] for r in report["results"] if r["skipped"]} == EXTERNAL_CAP_TESTS | {PIPE_ONLY}
    assert (report["passed"], report["skipped"]) == (110, 3)
