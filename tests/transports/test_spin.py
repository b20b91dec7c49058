"""The short busy-wait of a pipe read between processes (transports/pipe.py ``_spinner``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from vgi_rpc import SubprocessTransport
from vgi_rpc.transports.pipe import SPIN_SECONDS, _spinner, make_pipe_pair

WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")


def test_the_spin_ends_when_bytes_arrive_and_after_its_budget() -> None:
    r, w = os.pipe()
    try:
        spin = _spinner(r, 0.02)
        started = time.monotonic()
        spin()  # nothing comes: it gives up (and the read would block as before)
        assert time.monotonic() - started < 5  # a guard against spinning forever, not a timing
        os.write(w, b"x")
        spin()  # already readable
        assert os.read(r, 1) == b"x"
        os.close(w)
        spin()  # the writer is gone: readable (end of file), no wait
        assert os.read(r, 1) == b""
    finally:
        os.close(r)


def test_processes_spin_and_in_process_pipes_do_not() -> None:
    assert SPIN_SECONDS == 50e-6  # the default (the test run sets no VGI_RPC_SPIN_US)
    transport = SubprocessTransport([sys.executable, WORKER])
    try:
        assert transport.spin is not None
    finally:
        transport.close()
    client, server = make_pipe_pair()
    try:
        assert client.spin is None and server.spin is None  # one interpreter: its threads share the GIL
    finally:
        client.close()
        server.close()


def test_vgi_rpc_spin_us_sets_the_budget_and_zero_turns_it_off() -> None:
    probe = "from vgi_rpc.transports.pipe import SPIN_SECONDS; print(SPIN_SECONDS)"
    for value, expected in (("0", 0.0), ("120", 120e-6), ("junk", 50e-6)):
        env = {**os.environ, "VGI_RPC_SPIN_US": value}
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        assert float(out.stdout) == expected
    code = (
        "from vgi_rpc import SubprocessTransport; "
        f"t = SubprocessTransport([{sys.executable!r}, {WORKER!r}]); print(t.spin); t.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "VGI_RPC_SPIN_US": "0"}, capture_output=True, text=True
    )
    assert out.stdout.strip() == "None", out.stderr
