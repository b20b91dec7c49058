"""Starting and stopping real HTTP servers for tests: processes on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx


def spawn_port_printer(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stderr: Any = None,
    timeout: float = 30,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start *cmd*, which prints ``PORT:<n>`` on stdout once it listens; return the process and the port."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line += os.read(proc.stdout.fileno(), 256)
            if b"\n" in line:
                break
    text = line.decode(errors="replace")
    if not text.startswith("PORT:"):
        stop(proc)
        raise RuntimeError(f"{cmd!r} did not print PORT:<n> within {timeout} s (got {text!r})")
    return proc, int(text.split(":", 1)[1].split()[0])


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, timeout: float = 30, alive: Any = None) -> None:
    """Wait until GET *url* answers 200 (*alive*: a server process's ``poll``, to stop waiting once it exited)."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and alive() is not None:
            raise RuntimeError(f"the server for {url} exited before it answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become healthy within {timeout} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server process and its children (its session), by PID: TERM, then KILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def run_url_runner(peer_python: Path, port: int, cwd: Path, *extra: str) -> dict[str, Any]:
    """The reference conformance runner (``vgi-rpc-test --url``) against a server on *port*: its JSON report."""
    done = subprocess.run(
        [
            *(str(peer_python.parent / "vgi-rpc-test"), "--url", f"http://127.0.0.1:{port}", "--prefix", "/vgi"),
            *extra,
            *("--format", "json", "--timeout", "60"),
        ],
        capture_output=True,
        text=True,
        timeout=500,
        cwd=str(cwd),
    )
    assert done.stdout.strip(), f"runner printed nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report
