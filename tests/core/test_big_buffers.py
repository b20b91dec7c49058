"""Big ``bytes`` travel without copies on the way out: wrapped in Arrow buffers, written as chunks.

The bytes on the wire stay exactly pyarrow's own encoding; only the number of copies changes.
"""

from __future__ import annotations

import os
from typing import Protocol

import pyarrow as pa

from vgi_rpc import RpcServer, serve_pipe
from vgi_rpc._core.invoke import RequestEncoder, request_bytes
from vgi_rpc._core.ipc import encode_stream
from vgi_rpc._core.service import service_spec
from vgi_rpc._core.values import one_value_array


class Blobs(Protocol):
    def echo(self, data: bytes, tag: str) -> bytes: ...


class BlobsImpl:
    def echo(self, data: bytes, tag: str) -> bytes:
        return data + tag.encode()


def test_a_big_bytes_value_is_wrapped_not_copied() -> None:
    value = os.urandom(1 << 20)
    for arrow_type in (pa.binary(), pa.large_binary()):
        array = one_value_array(value, arrow_type)
        assert array.equals(pa.array([value], type=arrow_type))
        assert array.buffers()[2].address == pa.py_buffer(value).address  # the same memory
    small = one_value_array(b"abc", pa.binary())
    assert small.to_pylist() == [b"abc"]


def test_a_big_request_is_chunks_with_the_bytes_pyarrow_would_write() -> None:
    spec = service_spec(Blobs)
    method = next(m for m in spec.methods.values() if m.name == "echo")
    encoder = RequestEncoder(spec, method)
    value = os.urandom(1 << 20)
    request = encoder.encode((), {"data": value, "tag": "x"})
    assert isinstance(request, list)
    assert any(pa.py_buffer(value).address == pa.py_buffer(c).address for c in request if isinstance(c, pa.Buffer))
    batch = pa.RecordBatch.from_arrays([pa.array([value]), pa.array(["x"])], schema=method.params_schema)
    md = dict(encoder._metadata)  # the request's routing metadata
    assert request_bytes(request) == encode_stream(method.params_schema, ((batch, md),)).to_pybytes()
    assert isinstance(encoder.encode((), {"data": b"small", "tag": "x"}), bytes)


def test_big_and_small_bytes_round_trip() -> None:
    with serve_pipe(Blobs, BlobsImpl()) as proxy:
        for size in (0, 10, (1 << 16) - 1, 1 << 16, 3 << 20):
            value = os.urandom(size)
            assert proxy.echo(data=value, tag="!") == value + b"!"


def test_a_big_result_batch_wraps_the_returned_bytes() -> None:
    server = RpcServer(Blobs, BlobsImpl())
    value = os.urandom(1 << 20)
    reply = server.dispatcher._result_batch(  # the batch the server sends for a bytes result
        next(m for m in service_spec(Blobs).methods.values() if m.name == "echo"), value
    )
    assert reply.column(0).buffers()[2].address == pa.py_buffer(value).address


def test_a_big_message_is_read_into_arrow_memory_and_decodes() -> None:
    import io

    from vgi_rpc._core.framing import FrameReader, custom_metadata, decode_messages, message_header

    value = os.urandom(2 << 20)
    batch = pa.RecordBatch.from_arrays([pa.array([value])], names=["data"])
    data = encode_stream(batch.schema, ((batch, {b"k": b"v"}),)).to_pybytes()
    source = io.BytesIO(data)
    messages = FrameReader(source.read, source.readinto).read_messages()
    assert messages is not None
    (schema_message, _), (big, has_metadata) = messages
    assert isinstance(big, memoryview) and isinstance(schema_message, bytes)  # the body is not a bytearray
    assert has_metadata and custom_metadata(big) == {b"k": b"v"}
    header = message_header(big)
    assert len(header) < 1024 and custom_metadata(header) == {b"k": b"v"}
    _, items = decode_messages(messages)
    assert items[0][0].column(0).to_pylist() == [value]
    legacy = header[4:]  # the pre-1.0 framing: no continuation marker
    assert message_header(legacy) == legacy
