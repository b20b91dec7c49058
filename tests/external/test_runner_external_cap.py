"""Acceptance 5: the reference runner's ``http_response_cap.*`` tests against our HTTP conformance
worker with S3 externalization on (the local moto server) and both caps set.

With externalization advertised the runner skips the three strict tests that assume inline results
(``unary_strict_fail``, ``exchange_strict_fail``, ``producer_strict_fail``); the two ``*external*``
tests (results over ``max_externalized_response_bytes`` refused by name) and ``producer_lockstep``
pass. Counts pinned from its JSON.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.external.stores import Store, objects
from tests.http.servers import run_url_runner, spawn_port_printer, stop

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

SKIPPED = {
    "http_response_cap.unary_strict_fail",
    "http_response_cap.exchange_strict_fail",
    "http_response_cap.producer_strict_fail",
}
PASSED = {
    "http_response_cap.producer_lockstep",
    "http_response_cap.producer_external_strict_fail",
    "http_response_cap.externalized_strict_fail",
}


def test_runner_cap_tests_with_s3_externalization(
    peer_python: Path, moto_server: Store, bucket: str, tmp_path: Path
) -> None:
    worker = [sys.executable, "-m", "vgi_rpc.conformance", "--http", "0", "--max-response-bytes", "8388608"]
    worker += ["--max-externalized-response-bytes", "33554432", "--external-s3-bucket", bucket]
    worker += ["--external-s3-endpoint", moto_server.url, "--external-s3-region", "us-east-1", "--external-allow-http"]
    proc, port = spawn_port_printer(worker, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        headers = httpx.options(f"http://127.0.0.1:{port}/vgi/health", timeout=30).headers
        assert headers["VGI-Externalization-Enabled"] == "true"
        assert headers["VGI-Max-Externalized-Response-Bytes"] == "33554432"
        report = run_url_runner(peer_python, port, tmp_path, "--filter", "http_response_cap.*")
    finally:
        stop(proc)
    failures = [f"{r['name']}: {r['error']}" for r in report["results"] if not r["passed"] and not r["skipped"]]
    assert report["failed"] == 0, failures
    assert {r["name"] for r in report["results"] if r["skipped"]} == SKIPPED
    assert {r["name"] for r in report["results"] if r["passed"] and not r["skipped"]} == PASSED
    assert (report["passed"], report["failed"], report["skipped"]) == (3, 0, 3)
    assert objects(moto_server, bucket) == {}  # the results over the cap were refused before any upload
