"""0.52.2 behaviours of the call lifecycle, checked side by side against the reference peer.

- a request whose parameter columns come in another order is refused with the same typed
  error batch, and both servers keep serving;
- ``session.tick(metadata)`` takes a ``pa.KeyValueMetadata`` with bytes keys as well as a
  dict of str, against the peer's worker and ours;
- a stream used after it was closed or cancelled raises ``RpcError`` with
  ``error_type == "ProtocolError"`` on both clients, with the same message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.services import StreamService
from tests.wire import read_stream
from vgi_rpc import SubprocessTransport, connect

pytestmark = pytest.mark.interop
WORKERS = Path(__file__).resolve().parents[1] / "workers"
OUR_WORKER = [sys.executable, str(WORKERS / "everything_worker.py")]


def peer_cmd(peer_python: Path) -> list[str]:
    return [str(peer_python), "-I", str(WORKERS / "peer_worker.py")]


@pytest.fixture(params=["peer", "ours"])
def calc_worker(request: pytest.FixtureRequest, peer_python: Path) -> Iterator[SubprocessTransport]:
    if request.param == "peer":
        os.environ["VGI_TEST_SERVICE"] = "calc"
        transport = SubprocessTransport(peer_cmd(peer_python))
    else:
        transport = SubprocessTransport([*OUR_WORKER, "--calc"])
    yield transport
    transport.close()


def _add_request(names: list[str], values: list[float]) -> bytes:
    schema = pa.schema([pa.field(n, pa.float64(), nullable=False) for n in names])
    batch = pa.RecordBatch.from_arrays([pa.array([v], pa.float64()) for v in values], schema=schema)
    md = {b"vgi_rpc.method": b"add", b"vgi_rpc.request_version": b"1", b"vgi_rpc.protocol": b"Calculator"}
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch, custom_metadata=md)
    return sink.getvalue().to_pybytes()


def test_reordered_parameter_columns_are_refused_as_the_peer_refuses_them(calc_worker: SubprocessTransport) -> None:
    calc_worker.write(_add_request(["b", "a"], [2.0, 1.5]))
    reply = read_stream(calc_worker)
    assert reply is not None
    schema, items = reply
    assert schema.names == ["result"]
    assert len(items) == 1
    batch, md = items[0]
    assert batch.num_rows == 0 and md is not None
    assert md[b"vgi_rpc.log_level"] == b"EXCEPTION"
    assert md[b"vgi_rpc.log_message"] == b"TypeError: add() parameter schema field 0 expected name 'a', got 'b'"
    assert md[b"vgi_rpc.error_code"] == b"UNKNOWN"
    assert json.loads(md[b"vgi_rpc.log_extra"])["exception_type"] == "TypeError"
    # the server keeps serving, and the right order is answered
    calc_worker.write(_add_request(["a", "b"], [1.5, 2.0]))
    good = read_stream(calc_worker)
    assert good is not None
    assert good[1][0][0].column(0).to_pylist() == [3.5]


@pytest.fixture(params=["peer", "ours"])
def streams(request: pytest.FixtureRequest, peer_python: Path) -> Iterator[StreamService]:
    if request.param == "peer":
        os.environ["VGI_TEST_SERVICE"] = "streams"
        cmd = peer_cmd(peer_python)
    else:
        cmd = [*OUR_WORKER, "--streams"]
    with connect(StreamService, cmd) as proxy:
        yield proxy


def test_tick_metadata_as_key_value_metadata_with_bytes(streams: StreamService) -> None:
    with streams.tick_meta(n=4) as session:
        seen = [
            session.tick(pa.KeyValueMetadata({b"k": b"v", b"x": b"1"})),
            session.tick({"k": "v"}),
            session.tick({b"k": b"w"}),
            session.tick(),
        ]
    assert [b.batch.column("meta")[0].as_py() for b in seen if b is not None] == ["k=v,x=1", "k=v", "k=w", ""]


PEER_CLIENT = """
import json, os, sys
sys.path.append(sys.argv[1])
import pyarrow as pa
import vgi_rpc
from tests.services import StreamService
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = None
    except vgi_rpc.RpcError as err:
        out[name] = [err.error_type, err.error_message]
os.environ["VGI_TEST_SERVICE"] = "streams"
with vgi_rpc.connect(StreamService, [sys.executable, "-I", *sys.argv[2:]]) as proxy:
    batch = vgi_rpc.AnnotatedBatch.from_pydict({"value": [1.0]})
    with proxy.running_sum() as s:
        s.cancel()
        attempt("exchange_after_cancel", lambda: s.exchange(batch))
    with proxy.running_sum() as s:
        s.exchange(batch)
    attempt("exchange_after_close", lambda: s.exchange(batch))
    with proxy.count(n=5) as p:
        p.tick()
        p.close()
        attempt("tick_after_close", lambda: p.tick())
    attempt("ping_after", lambda: proxy.ping())
print(json.dumps(out))
"""


def test_stream_used_after_its_end_raises_protocol_error_as_the_peer_does(run_peer: Any, tmp_path: Path) -> None:
    """The same client script, run by the peer's interpreter and by ours, each against its own worker."""
    root = str(Path(__file__).resolve().parents[2])
    done = run_peer(PEER_CLIENT, root, str(WORKERS / "peer_worker.py"))
    assert done.returncode == 0, done.stderr
    peer = json.loads(done.stdout.strip().splitlines()[-1])
    script = tmp_path / "our_client.py"
    script.write_text(PEER_CLIENT.replace("sys.path.append(sys.argv[1])", "sys.path.insert(0, sys.argv[1])"))
    mine = subprocess.run(
        [sys.executable, str(script), root, str(WORKERS / "everything_worker.py"), "--streams"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert mine.returncode == 0, mine.stderr
    ours = json.loads(mine.stdout.strip().splitlines()[-1])
    assert peer["exchange_after_cancel"] == ["ProtocolError", "Stream has been closed or cancelled"]
    assert peer["ping_after"] is None
    # same error_type; our message names the method before 0.52.2's text
    assert set(peer) == set(ours)
    for name, value in peer.items():
        if value is None:
            assert ours[name] is None
        else:
            assert ours[name][0] == value[0]
            assert ours[name][1].endswith(value[1])
