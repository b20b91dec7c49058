"""Observers see one start and one end record per call, with real statistics, on every path."""

from __future__ import annotations

import copy
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pytest

from tests.services import Everything, EverythingImpl, StreamService, StreamServiceImpl
from tests.transports.turn_driver import frames
from vgi_rpc import AnnotatedBatch, RpcConnection, RpcServer, make_pipe_pair
from vgi_rpc._core import dispatch as dispatch_module
from vgi_rpc._core.dispatch import Reply
from vgi_rpc._core.invoke import RequestEncoder
from vgi_rpc._core.ipc import encode_stream
from vgi_rpc._core.observe import CallRecord
from vgi_rpc._core.service import service_spec


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.ended: list[CallRecord] = []

    def on_start(self, record: CallRecord) -> None:
        self.events.append(("start", id(record)))

    def on_end(self, record: CallRecord) -> None:
        self.events.append(("end", id(record)))
        self.ended.append(copy.deepcopy(record))

    def one(self) -> CallRecord:
        """The single call recorded since the last take: exactly one start, then one end.

        A pipe server reports a stream's end once it has read the client's input to its end,
        which may be just after the client returned: wait for it (bounded).
        """
        deadline = time.monotonic() + 5
        while len(self.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(self.events) == 2, self.events
        (kind0, a), (kind1, b) = self.events
        assert (kind0, kind1) == ("start", "end") and a == b
        record = self.ended[0]
        self.events.clear()
        self.ended.clear()
        return record


def _request(protocol: type, method: str, **kwargs: Any) -> bytes:
    spec = service_spec(protocol)
    return RequestEncoder(spec, spec.methods[method]).encode((), kwargs)


def _serve(protocol: type, impl: object, request: bytes, recorder: Recorder) -> Reply:
    reply = RpcServer(protocol, impl, observers=[recorder]).dispatcher.handle_messages(frames(request)[0])
    assert isinstance(reply, Reply)
    return reply


def test_unary_general_path_record() -> None:
    rec = Recorder()
    _serve(Everything, EverythingImpl(), _request(Everything, "echo_str", value="hello"), rec)
    record = rec.one()
    assert (record.protocol, record.method, record.method_type, record.status) == (
        "Everything",
        "echo_str",
        "unary",
        "ok",
    )
    assert record.request_fields == [("value", "string")] and record.request_rows == 1
    s = record.stats
    assert (s.input_batches, s.input_rows, s.output_batches, s.output_rows) == (1, 1, 1, 1)
    assert s.input_bytes >= 5 and s.output_bytes >= 5  # the string's bytes at least
    assert record.duration_ms >= 0 and len(record.request_id) == 16


@pytest.mark.parametrize(
    ("method", "kwargs"), [("echo_int", {"value": 5}), ("noop", {}), ("echo_bool", {"value": True})]
)
def test_template_path_and_general_path_give_the_same_record(
    method: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    template = _request(Everything, method, **kwargs)
    # the same call laid out as another client might: one extra metadata key -> general path
    reader = pa.ipc.open_stream(template)
    batch, md = reader.read_next_batch_with_custom_metadata()
    schema = reader.schema
    general = bytes(encode_stream(schema, [(batch, {**dict(md), b"x-other-client": b"1"})]).to_pybytes())
    decoded: list[bool] = []
    real = dispatch_module.decode_messages
    records = []
    for request in (template, general):
        rec = Recorder()
        server = RpcServer(Everything, EverythingImpl())
        server.dispatcher.handle_messages(frames(request)[0])  # a method's first call binds it: the general path
        server.add_observer(rec)
        with monkeypatch.context() as patch:
            patch.setattr(dispatch_module, "decode_messages", lambda m: decoded.append(True) or real(m))
            server.dispatcher.handle_messages(frames(request)[0])
        records.append(rec.one())
    assert decoded == [True]  # the paths really differ: only the general one decoded the request
    a, b = (replace(r, server_id="", request_id="", start_ns=0, duration_ms=0.0) for r in records)
    assert a == b
    if method == "echo_int":
        assert (a.stats.input_batches, a.stats.input_rows, a.stats.input_bytes) == (1, 1, 8)
        assert (a.stats.output_batches, a.stats.output_rows, a.stats.output_bytes) == (1, 1, 8)


def test_routing_fault_malformed_request_and_transport_options_are_recorded() -> None:
    rec = Recorder()
    unknown = _request(Everything, "echo_int", value=1).replace(b"echo_int", b"echo_xyz")
    _serve(Everything, EverythingImpl(), unknown, rec)
    record = rec.one()
    assert (record.method, record.method_type, record.status) == ("echo_xyz", "", "error")
    assert record.error_type == "MethodNotImplementedError" and record.error_code == "UNIMPLEMENTED"

    bad = bytearray(_request(Everything, "echo_str", value="x"))
    root = 8 + struct.unpack_from("<I", bad, 8)[0]
    vtable = root - struct.unpack_from("<i", bad, root)[0]
    bad[root + struct.unpack_from("<H", bad, vtable + 6)[0]] = 42  # an unknown message header type
    _serve(Everything, EverythingImpl(), bytes(bad), rec)
    record = rec.one()
    assert record.status == "error" and record.error_type == "MalformedStreamError"

    md = {b"vgi_rpc.method": b"__transport_options__", b"vgi_rpc.request_version": b"1"}
    request = bytes(
        encode_stream(pa.schema([]), [(pa.RecordBatch.from_pylist([], schema=pa.schema([])), md)]).to_pybytes()
    )
    _serve(Everything, EverythingImpl(), request, rec)
    record = rec.one()
    assert (record.method, record.status) == ("__transport_options__", "ok")


@pytest.fixture
def streams() -> Iterator[tuple[StreamService, Recorder]]:
    rec = Recorder()
    client, server_side = make_pipe_pair()
    server = RpcServer(StreamService, StreamServiceImpl(), observers=[rec])
    thread = threading.Thread(target=server.serve, args=(server_side,), daemon=True)
    thread.start()
    with RpcConnection(StreamService, client) as proxy:
        yield proxy, rec
    thread.join(timeout=5)
    server_side.close()


def test_producer_exchange_and_cancelled_stream_records(streams: tuple[StreamService, Recorder]) -> None:
    proxy, rec = streams
    assert len(list(proxy.count(n=3))) == 3
    record = rec.one()
    assert (record.method, record.method_type, record.status, record.cancelled) == ("count", "stream", "ok", False)
    s = record.stats
    assert (s.input_batches, s.input_rows) == (5, 1)  # the request (n=3, one row), then n + 1 ticks
    assert (s.output_batches, s.output_rows, s.output_bytes) == (3, 3, 24)

    with proxy.running_sum() as session:
        session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]}))
        session.exchange(AnnotatedBatch.from_pydict({"value": [3.0]}))
    record = rec.one()
    s = record.stats
    assert (s.input_batches, s.input_rows, s.input_bytes) == (3, 3, 24)  # the request (no parameters), 2 inputs
    assert (s.output_batches, s.output_rows) == (2, 2)

    with proxy.count(n=10) as session:
        session.tick()
        session.cancel()
    record = rec.one()
    assert record.cancelled and record.status == "ok"
    assert record.stats.output_batches == 1

    with pytest.raises(Exception, match="failed at 1"):
        list(proxy.count(n=3, fail_at=1))
    record = rec.one()
    assert (record.status, record.error_type) == ("error", "RuntimeError")
    assert proxy.ping() == "pong"
    assert rec.one().method == "ping"
