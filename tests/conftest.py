"""Shared fixtures: the reference peer (built on demand) and helpers to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.refpeer import PeerUnavailable, in_ci, ref_python

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _stop_http_servers() -> Iterator[None]:
    """HTTP servers the transport factories started are stopped when the session ends; nothing is left behind."""
    before = set(_shm_segments())
    yield
    from tests.transports.factories import stop_http_servers

    stop_http_servers()
    left = _live_children()
    assert not left, f"the test session left child processes behind: {left}"
    segments = sorted(set(_shm_segments()) - before)
    assert not segments, f"the test session left shared-memory segments behind: {segments}"


def _shm_segments() -> list[str]:
    return [name for name in os.listdir("/dev/shm") if name.startswith("vgi_")]


def _live_children() -> list[str]:
    """Processes whose parent is this one and that have not exited (zombies excepted), with their commands."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if ppid == me and state != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


@pytest.fixture(scope="session")
def peer_python() -> Path:
    """The reference peer's python; fails under CI=true, skips elsewhere, when it cannot be set up."""
    try:
        return ref_python()
    except PeerUnavailable as exc:
        if in_ci():
            pytest.fail(f"reference peer unavailable under CI: {exc}")
        pytest.skip(f"reference peer unavailable: {exc}")


@pytest.fixture(scope="session")
def our_python() -> str:
    return sys.executable


@pytest.fixture
def run_peer(peer_python: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run a script with the peer's ``python -I`` in a directory outside the checkout."""

    def run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "peer_script.py"
        path.write_text(script)
        return subprocess.run(
            [str(peer_python), "-I", str(path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(tmp_path),
        )

    return run
