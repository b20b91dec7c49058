"""Framing a body held in memory (``stream_at``) agrees with ``FrameReader`` on every byte string."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgi_rpc._core.framing import FrameReader, split_streams, stream_at
from vgi_rpc.errors import IPCError, TransportError


def _stream(batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None = None, legacy: bool = False) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(use_legacy_format=legacy)
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(batch, custom_metadata=metadata)
    return bytes(sink.getvalue())


SMALL = _stream(pa.record_batch({"x": [1, 2, 3]}), {b"vgi_rpc.method": b"ping"})
BIG = _stream(pa.record_batch({"b": pa.array([b"x" * 100_000], pa.binary())}))  # a message past 64 KiB: a view
LEGACY = _stream(pa.record_batch({"s": ["a", "b"]}), legacy=True)
EMPTY = _stream(pa.record_batch({"x": pa.array([], pa.int64())}))
DICT = _stream(pa.record_batch({"d": pa.array(["r", "g", "r"]).dictionary_encode()}))


def _reader(data: bytes) -> object:
    """What FrameReader makes of *data*: its streams' messages as bytes, or the error type it raises."""
    source = io.BytesIO(data)
    frames = FrameReader(source.read, source.readinto, max_body=len(data))
    streams = []
    try:
        while (messages := frames.read_messages()) is not None:
            streams.append([(bytes(m), md) for m, md in messages])
    except (IPCError, TransportError):
        return "error"
    return streams


def _in_memory(data: bytes) -> object:
    try:
        return [[(bytes(m), md) for m, md in messages] for messages in split_streams(data)]
    except (IPCError, TransportError):
        return "error"


@pytest.mark.parametrize("data", [SMALL, BIG, LEGACY, EMPTY, DICT, SMALL + BIG + LEGACY, b""])
def test_the_same_messages_as_the_frame_reader(data: bytes) -> None:
    assert _in_memory(data) == _reader(data)


def test_small_messages_are_copies_and_big_ones_views() -> None:
    messages, end = stream_at(BIG)
    assert end == len(BIG)
    assert [type(m) for m, _ in messages] == [bytes, memoryview]
    assert stream_at(SMALL + BIG, 0)[1] == len(SMALL)  # the offset after the first stream's EOS


@pytest.mark.parametrize("data", [SMALL, BIG, LEGACY, DICT])
def test_every_truncation_is_an_error(data: bytes) -> None:
    for cut in range(1, len(data), max(1, len(data) // 200)):
        assert _in_memory(data[:cut]) == "error" == _reader(data[:cut]), cut


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([SMALL, LEGACY, DICT, SMALL + LEGACY]), st.data())
def test_damaged_bytes_get_the_same_answer(data: bytes, draw: st.DataObject) -> None:
    damaged = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        damaged[draw.draw(st.integers(0, len(data) - 1))] = draw.draw(st.integers(0, 255))
    assert _in_memory(bytes(damaged)) == _reader(bytes(damaged))


@given(st.binary(max_size=64))
def test_arbitrary_bytes_get_the_same_answer(data: bytes) -> None:
    assert _in_memory(data) == _reader(data)


@pytest.mark.parametrize("data", [SMALL, DICT])
def test_a_vtable_before_the_metadata_is_an_error_either_way(data: bytes) -> None:
    # found by the property above: an offset pointing before the flatbuffer must not wrap
    # around to its end (struct counts negative positions from the end)
    damaged = bytearray(data)
    damaged[24] = 53
    assert _in_memory(bytes(damaged)) == "error" == _reader(bytes(damaged))


def test_layouts_are_remembered_by_their_bytes_and_failures_are_not() -> None:
    from vgi_rpc._core import framing

    start = 8 + int.from_bytes(SMALL[4:8], "little")  # the batch message after the schema
    meta = SMALL[start + 8 : start + 8 + int.from_bytes(SMALL[start + 4 : start + 8], "little")]
    first = framing.layout_of(meta)
    assert first == framing.message_layout(meta) and first[1]  # it carries custom metadata
    assert framing.layout_of(bytes(meta)) is first  # a lookup the second time
    assert framing.layout_of(bytearray(meta)) is first  # any buffer type, keyed as bytes
    damaged = bytearray(meta)
    damaged[0:4] = (len(meta) + 100).to_bytes(4, "little")  # the root table past the end
    for _ in range(2):  # refused every time, never remembered
        with pytest.raises(IPCError):
            framing.layout_of(bytes(damaged))
    assert bytes(damaged) not in framing._LAYOUTS
    for k in range(framing._LAYOUTS_MAX + 10):  # bounded: distinct flatbuffers do not pile up
        framing.layout_of(_stream(pa.record_batch({f"c{k}": [k]}))[8:])
    assert len(framing._LAYOUTS) <= framing._LAYOUTS_MAX


def test_custom_metadata_is_remembered_and_each_caller_gets_its_own_dict() -> None:
    from vgi_rpc._core.framing import custom_metadata

    start = 8 + int.from_bytes(SMALL[4:8], "little")
    message = SMALL[start:-8]  # the batch message, without the end-of-stream marker
    first = custom_metadata(message)
    assert first == {b"vgi_rpc.method": b"ping"}
    first[b"changed"] = b"by the caller"
    again = custom_metadata(bytearray(message))
    assert again == {b"vgi_rpc.method": b"ping"} and again is not first
    assert custom_metadata(SMALL[:start]) is None  # the schema message has none, remembered too
    assert custom_metadata(SMALL[:start]) is None
