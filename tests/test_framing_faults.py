"""Framing faults never hang and never hide: bad bytes, truncation, dead workers."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from tests.services import StreamService, StreamServiceImpl
from tests.wire import read_stream
from vgi_rpc import (
    IPCError,
    MalformedStreamError,
    RpcConnection,
    RpcServer,
    StderrMode,
    SubprocessTransport,
    TransportError,
    connect,
    make_pipe_pair,
)

pytestmark = pytest.mark.timeout(60)

WORKER = str(Path(__file__).parent / "workers" / "everything_worker.py")
PING = {
    b"vgi_rpc.method": b"ping",
    b"vgi_rpc.request_version": b"1",
    b"vgi_rpc.protocol": b"StreamService",
}


def _ping_request() -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([])) as w:
        w.write_batch(pa.RecordBatch.from_pydict({}, schema=pa.schema([])), custom_metadata=PING)
    return sink.getvalue().to_pybytes()


def _worker() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, WORKER, "--streams"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _assert_exits_with_one_clear_line(proc: subprocess.Popen[bytes], expect: str) -> None:
    """The worker stops on its own (stdin still open) and says why in one line, without a traceback."""
    try:
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expect in lines[0]
    assert proc.stdout is not None
    assert proc.stdout.read() == b""  # nothing dressed up as an answer


FAULTS = {
    "garbage": b"this is not arrow at all, not even close" * 4,
    "oversized-metadata-length": b"\xff\xff\xff\xff" + struct.pack("<i", 0x7FFFFFF0),
    "negative-length": b"\xff\xff\xff\xff" + struct.pack("<i", -5),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_bytes_that_are_not_ipc_stop_the_worker_promptly(fault: str) -> None:
    proc = _worker()
    assert proc.stdin is not None
    proc.stdin.write(FAULTS[fault])
    proc.stdin.flush()  # stdin stays open: the worker must not wait for more
    _assert_exits_with_one_clear_line(proc, "stopping")
    proc.stdin.close()


def test_truncated_stream_stops_the_worker() -> None:
    proc = _worker()
    assert proc.stdin is not None
    proc.stdin.write(_ping_request()[:100])
    proc.stdin.close()
    _assert_exits_with_one_clear_line(proc, "middle of")


def test_well_framed_but_undecodable_stream_is_answered_and_the_worker_goes_on() -> None:
    good = bytearray(_ping_request())
    # set the first message's header type (Message field 1) to a value no reader knows,
    # keeping every length intact: the stream still frames, but does not decode
    meta = 8
    root = meta + struct.unpack_from("<I", good, meta)[0]
    vtable = root - struct.unpack_from("<i", good, root)[0]
    offset = struct.unpack_from("<H", good, vtable + 4 + 2 * 1)[0]
    assert offset and good[root + offset] == 1  # Schema
    good[root + offset] = 42
    client, server_side = make_pipe_pair()
    thread = threading.Thread(target=RpcServer(StreamService, StreamServiceImpl()).serve, args=(server_side,))
    thread.start()
    try:
        client.write(bytes(good))
        incoming = read_stream(client)
        assert incoming is not None
        (_, md), *_ = incoming[1]
        assert md is not None and md[b"vgi_rpc.log_level"] == b"EXCEPTION"
        assert b"MalformedStreamError" in md[b"vgi_rpc.log_message"]
        assert RpcConnection(StreamService, client).proxy.ping() == "pong"
    finally:
        client.close()
        thread.join(timeout=5)
        server_side.close()


def test_client_gets_a_transport_error_when_the_worker_stops_on_garbage() -> None:
    transport = SubprocessTransport([sys.executable, WORKER, "--streams"], stderr=StderrMode.DEVNULL)
    try:
        transport.write(FAULTS["garbage"])
        with pytest.raises(TransportError):
            RpcConnection(StreamService, transport).proxy.ping()
    finally:
        transport.close()


def test_client_rejects_garbage_from_a_server_as_a_protocol_error_not_a_remote_one() -> None:
    client, server_side = make_pipe_pair()

    def evil() -> None:
        assert read_stream(server_side) is not None
        server_side.write(FAULTS["oversized-metadata-length"])

    thread = threading.Thread(target=evil)
    thread.start()
    with pytest.raises(IPCError) as info:
        RpcConnection(StreamService, client).proxy.ping()
    assert not isinstance(info.value, MalformedStreamError)
    thread.join(timeout=5)
    client.close()
    server_side.close()


@pytest.mark.parametrize("how", ["os_exit", "sigkill"])
def test_worker_dying_mid_call_gives_a_transport_error_and_no_zombie(how: str) -> None:
    start = time.monotonic()
    with connect(StreamService, [sys.executable, WORKER, "--streams"]) as proxy:
        conn = proxy._connection  # type: ignore[attr-defined]
        pid = conn.transport.pid
        with pytest.raises(TransportError):
            if how == "os_exit":
                proxy.crash(code=3)
            else:
                threading.Timer(0.5, os.kill, args=(pid, signal.SIGKILL)).start()
                proxy.sleep(seconds=30)
        with pytest.raises(TransportError):
            proxy.ping()
    assert time.monotonic() - start < 15
    assert conn.transport.process.returncode is not None  # reaped: no zombie
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
