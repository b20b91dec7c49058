"""``vgi-rpc-test --access-log`` (the reference runner) validates our conformance worker's access log.

The runner validates every record against 0.52.2's ``access_log.schema.json`` after the suite;
it reports the verdict on stderr (``--access-log: PASS: <n> entries validated``) and fails the
run (exit 1) when a record is invalid or the file holds none.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.http.servers import spawn_port_printer, stop

pytestmark = [pytest.mark.interop, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
# everything but the slow 2 GiB payload test (its record is of the same kind as the other large_payload ones)
FILTER = "*,!large_payload.echo_binary_over_int32_max"
_PASS = re.compile(r"--access-log: PASS: (\d+) entries validated")


def _run(peer_python: Path, tmp_path: Path, target: list[str], log: Path) -> tuple[dict[str, Any], int]:
    runner = peer_python.parent / "vgi-rpc-test"
    done = subprocess.run(
        [str(runner), *target, "--access-log", str(log), "--filter", FILTER, "--format", "json", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=800,
        cwd=str(tmp_path),
    )
    assert done.stdout.strip(), f"runner printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(done.stdout)
    failed = "\n".join(f"{r['name']}: {r['error']}" for r in report["results"] if not r["passed"] and not r["skipped"])
    assert report["failed"] == 0, failed
    verdict = _PASS.search(done.stderr)
    assert done.returncode == 0 and verdict is not None, done.stderr[-3000:]
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert int(verdict.group(1)) == len(lines)
    return report, len(lines)


def _whoami_ok(whoami: Path) -> None:
    assert Path(whoami.read_text()).resolve() == (ROOT / "vgi_rpc" / "__init__.py").resolve()


def test_runner_validates_our_access_log_over_the_pipe(peer_python: Path, tmp_path: Path) -> None:
    log, whoami = tmp_path / "pipe-access.jsonl", tmp_path / "whoami.txt"
    worker = [sys.executable, "-m", "vgi_rpc.conformance", "--whoami-file", str(whoami), "--access-log", str(log)]
    report, records = _run(peer_python, tmp_path, ["--cmd", shlex.join(worker)], log)
    _whoami_ok(whoami)
    assert report["passed"] >= 100 and records >= report["passed"]


def test_runner_validates_our_access_log_over_http(peer_python: Path, tmp_path: Path) -> None:
    log, whoami = tmp_path / "http-access.jsonl", tmp_path / "whoami.txt"
    cmd = [sys.executable, "-m", "vgi_rpc.conformance", "--http", "0", "--whoami-file", str(whoami)]
    proc, port = spawn_port_printer([*cmd, "--access-log", str(log)], cwd=tmp_path)
    try:
        report, records = _run(peer_python, tmp_path, ["--url", f"http://127.0.0.1:{port}", "--prefix", "/vgi"], log)
    finally:
        stop(proc)
    _whoami_ok(whoami)
    assert report["passed"] >= 100 and records >= report["passed"]


def test_runner_rejects_a_log_without_records(peer_python: Path, tmp_path: Path) -> None:
    """The check has teeth: an empty file fails the run even though every test passed."""
    log = tmp_path / "empty.jsonl"
    log.write_text("")
    worker = [sys.executable, "-m", "vgi_rpc.conformance"]
    runner = peer_python.parent / "vgi-rpc-test"
    done = subprocess.run(
        [str(runner), "--cmd", shlex.join(worker), "--access-log", str(log), "--filter", "scalar_echo.echo_int"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert done.returncode == 1 and _PASS.search(done.stderr) is None
