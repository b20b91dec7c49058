"""The reference client (in the peer's venv) against our run_server worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services import Everything, StreamService
from vgi_rpc._core.describe import protocol_hash
from vgi_rpc._core.service import service_spec

pytestmark = pytest.mark.interop
HERE = Path(__file__).resolve().parent
WORKER = HERE.parent / "workers" / "everything_worker.py"


@pytest.fixture(scope="module")
def report(peer_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proc = subprocess.run(
        [str(peer_python), "-I", str(HERE / "peer_client_script.py"), sys.executable, str(WORKER)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path_factory.mktemp("peer")),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_the_peer_client_is_the_reference(report: dict[str, Any]) -> None:
    assert "site-packages" in report["client_vgi_rpc"]


def test_every_check_passed(report: dict[str, Any]) -> None:
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed
    assert len(report["checks"]) >= 45
    assert sum(name.startswith("wide:") for name in report["checks"]) == 20


def test_error_reaches_the_reference_client(report: dict[str, Any]) -> None:
    # the reference client shows the prefixed message form
    assert report["error"] == ["ValueError", "ValueError: something went wrong", True]


def test_logs_reach_the_reference_client(report: dict[str, Any]) -> None:
    assert report["logs"] == [
        ["DEBUG", "first", {"step": "1"}],
        ["INFO", "second", {"step": "2"}],
        ["WARN", "third", {}],
    ]


def test_version_mismatch_reaches_the_reference_client(report: dict[str, Any]) -> None:
    assert report["version_error"] == ["ProtocolVersionError", "FAILED_PRECONDITION", "protocol_version_mismatch"]


def test_stream_error_after_two_batches(report: dict[str, Any]) -> None:
    count, etype, message = report["stream_error"]
    assert (count, etype) == (2, "RuntimeError")
    assert message.endswith("failed at 2")


def test_reference_introspection_of_our_worker_agrees_on_hashes(report: dict[str, Any]) -> None:
    assert report["hashes"] == {
        "Everything": protocol_hash(service_spec(Everything)),
        "StreamService": protocol_hash(service_spec(StreamService)),
    }
