"""The stream codec's own framing agrees with pyarrow byte for byte and batch for batch.

``StreamWriter`` serializes small plain batches itself and ``BatchReader`` decodes messages one by
one with its own custom-metadata parser; both must be indistinguishable from pyarrow's stream
writer and reader, for every kind of schema and metadata.
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgi_rpc._core.framing import BatchReader, FrameReader, custom_metadata, decode_messages
from vgi_rpc._core.ipc import StreamWriter, decode_stream, has_dictionary
from vgi_rpc.errors import IPCError, MalformedStreamError


def _batches() -> dict[str, pa.RecordBatch]:
    ints = pa.array([1, None, 3], pa.int64())
    strings = pa.array(["a", None, "ccc"])
    nested = pa.array([[{"x": 1}], None, []], pa.list_(pa.struct([pa.field("x", pa.int32())])))
    dictionary = pa.array(["x", "y", "x"]).dictionary_encode()
    deep_dictionary = pa.array([[{"d": "p"}], [], None]).cast(
        pa.list_(pa.struct([pa.field("d", pa.dictionary(pa.int8(), pa.string()))]))
    )
    big = pa.array(range(20_000), pa.int64())  # 160 KB: above the serialize() threshold
    return {
        "empty": pa.RecordBatch.from_arrays([], schema=pa.schema([])),
        "ints": pa.RecordBatch.from_arrays([ints], names=["i"]),
        "mixed": pa.RecordBatch.from_arrays([ints, strings, nested], names=["i", "s", "n"]),
        "sliced": pa.RecordBatch.from_arrays([ints, strings], names=["i", "s"]).slice(1, 2),
        "dictionary": pa.RecordBatch.from_arrays([ints, dictionary], names=["i", "d"]),
        "deep_dictionary": pa.RecordBatch.from_arrays([deep_dictionary], names=["l"]),
        "big": pa.RecordBatch.from_arrays([big], names=["b"]),
        "schema_metadata": pa.RecordBatch.from_arrays(
            [ints], schema=pa.schema([pa.field("i", pa.int64(), metadata={b"f": b"1"})], metadata={b"s": b"2"})
        ),
    }


BATCHES = _batches()
METADATA: list[dict[bytes, bytes] | None] = [
    None,
    {b"k": b"v"},
    None,
    {b"": b"", b"unicode \xc3\xa9": b"\x00\xff" * 40, b"third": b"3"},
    None,
]


def _pyarrow_stream(batch: pa.RecordBatch, metadata: list[dict[bytes, bytes] | None]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        for md in metadata:
            writer.write_batch(batch, custom_metadata=md)
    return sink.getvalue().to_pybytes()


def _our_stream(batch: pa.RecordBatch, metadata: list[dict[bytes, bytes] | None], take_each: bool) -> bytes:
    writer = StreamWriter(batch.schema)
    chunks: list[Any] = []
    for md in metadata:
        writer.write(batch, md)
        if take_each:
            chunks.extend(writer.take())
    writer.end()
    chunks.extend(writer.take())
    return b"".join(bytes(memoryview(c)) for c in chunks)


@pytest.mark.parametrize("take_each", [True, False], ids=["take-each", "take-once"])
@pytest.mark.parametrize("name", list(BATCHES))
def test_writer_bytes_equal_pyarrow(name: str, take_each: bool) -> None:
    batch = BATCHES[name]
    assert _our_stream(batch, METADATA, take_each) == _pyarrow_stream(batch, METADATA)
    plain_first = [None, None, {b"k": b"v"}, None]
    assert _our_stream(batch, plain_first, take_each) == _pyarrow_stream(batch, plain_first)


@pytest.mark.parametrize("name", ["empty", "ints", "dictionary"])
def test_writer_empty_stream(name: str) -> None:
    batch = BATCHES[name]
    assert _our_stream(batch, [], True) == _pyarrow_stream(batch, [])


def _frames(data: bytes, buffered: bool) -> tuple[FrameReader, Any]:
    """A frame reader over *data*: a plain source, or a small buffered one (the peek fast path)."""
    if not buffered:
        plain = io.BytesIO(data)
        return FrameReader(plain.read, plain.readinto), plain
    source = io.BufferedReader(io.BytesIO(data), 256)  # messages straddle the buffer edge
    return FrameReader(source.read, source.readinto, source.peek), source


@pytest.mark.parametrize("buffered", [False, True], ids=["plain", "peek"])
@pytest.mark.parametrize("name", list(BATCHES))
def test_reader_matches_pyarrow(name: str, buffered: bool) -> None:
    batch = BATCHES[name]
    data = _pyarrow_stream(batch, METADATA)
    expected = pa.ipc.open_stream(data)
    frames, source = _frames(data, buffered)
    reader = BatchReader(frames)
    assert reader.schema.equals(expected.schema, check_metadata=True)
    for md in METADATA:
        got = reader.next()
        assert got is not None
        want, want_md = expected.read_next_batch_with_custom_metadata()
        assert got[0].equals(want)
        assert got[1] == (dict(want_md) if want_md is not None else None) == md
    assert reader.next() is None
    assert reader.next() is None  # stays at the end
    assert source.read() == b""  # stopped exactly at the end-of-stream marker


@pytest.mark.parametrize("buffered", [False, True], ids=["plain", "peek"])
def test_frame_reader_reads_back_to_back_streams(buffered: bool) -> None:
    streams = [_pyarrow_stream(BATCHES[name], METADATA[:2]) for name in ("mixed", "empty", "big", "ints")]
    frames, _ = _frames(b"".join(streams), buffered)
    for stream in streams:
        assert frames.read_stream() == stream
    assert frames.read_stream() is None


@pytest.mark.parametrize("buffered", [False, True], ids=["plain", "peek"])
@pytest.mark.parametrize("name", list(BATCHES))
def test_decode_messages_matches_pyarrow(name: str, buffered: bool) -> None:
    """Whole-stream decoding (unary requests and replies) agrees with pyarrow's reader."""
    data = _pyarrow_stream(BATCHES[name], METADATA)
    frames, _ = _frames(data + data, buffered)
    expected_schema, expected = decode_stream(data)
    for _ in range(2):  # the second time the schema comes from the cache
        messages = frames.read_messages()
        assert messages is not None
        schema, items = decode_messages(messages)
        assert schema.equals(expected_schema, check_metadata=True)
        assert [(b.to_pydict(), md) for b, md in items] == [(b.to_pydict(), md) for b, md in expected]
    assert frames.read_messages() is None


def test_decode_messages_reports_malformed_streams() -> None:
    ints = _pyarrow_stream(BATCHES["ints"], [None])
    schema_len = len(BATCHES["ints"].schema.serialize())
    no_schema = io.BytesIO(ints[schema_len:])  # a batch where the schema should be
    messages = FrameReader(no_schema.read).read_messages()
    assert messages is not None
    with pytest.raises(MalformedStreamError):
        decode_messages(messages)
    with pytest.raises(MalformedStreamError):
        decode_messages([])


def test_has_dictionary_finds_nested_dictionaries() -> None:
    assert has_dictionary(BATCHES["deep_dictionary"].schema)
    assert has_dictionary(BATCHES["dictionary"].schema)
    assert not has_dictionary(BATCHES["mixed"].schema)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.binary(max_size=40), st.binary(max_size=300), max_size=12))
def test_custom_metadata_parser_matches_pyarrow(md: dict[bytes, bytes]) -> None:
    batch = BATCHES["ints"]
    data = _pyarrow_stream(batch, [md or None])
    schema_len = len(batch.schema.serialize())
    message = data[schema_len:-8]
    assert custom_metadata(message) == (md or None)


def test_writer_rejects_a_batch_of_another_schema() -> None:
    ints = BATCHES["ints"]
    writer = StreamWriter(ints.schema)
    writer.write(ints)  # schema written; later small batches take the serialize() path
    with pytest.raises(pa.ArrowInvalid):
        writer.write(BATCHES["mixed"])
    with pytest.raises(pa.ArrowInvalid):
        writer.write(BATCHES["mixed"], {b"k": b"v"})
    writer.write(ints, {b"k": b"v"})  # the stream stays well formed after the refusals
    writer.end()
    data = b"".join(bytes(memoryview(c)) for c in writer.take())
    assert data == _pyarrow_stream(ints, [None, {b"k": b"v"}])


def test_reader_rejects_a_dictionary_batch_in_a_plain_stream() -> None:
    plain = _pyarrow_stream(BATCHES["ints"], [])[:-8]  # schema, no EOS
    dictionary_stream = _pyarrow_stream(BATCHES["dictionary"], [None])
    dictionary_message = dictionary_stream[len(BATCHES["dictionary"].schema.serialize()) :]
    source = io.BytesIO(plain + dictionary_message)
    reader = BatchReader(FrameReader(source.read, source.readinto))
    with pytest.raises(IPCError, match="malformed Arrow IPC"):
        reader.next()


def test_reader_rejects_corrupt_metadata_offsets() -> None:
    batch = BATCHES["ints"]
    data = bytearray(_pyarrow_stream(batch, [{b"k": b"v"}]))
    message = bytearray(data[len(batch.schema.serialize()) : -8])
    message[8:12] = (len(message) * 4).to_bytes(4, "little")  # root table offset far past the end
    with pytest.raises(IPCError):
        custom_metadata(bytes(message))


@pytest.mark.parametrize("buffered", [False, True], ids=["plain", "peek"])
def test_metadata_offsets_past_the_metadata_are_malformed(buffered: bool) -> None:
    """A root offset pointing into the body is refused, even when the body is already buffered."""
    batch = BATCHES["ints"]
    data = bytearray(_pyarrow_stream(batch, [None]))
    start = len(batch.schema.serialize())  # the batch message
    meta_len = int.from_bytes(data[start + 4 : start + 8], "little")
    data[start + 8 : start + 12] = (meta_len + 8).to_bytes(4, "little")  # root table inside the body
    frames, _ = _frames(bytes(data), buffered)
    with pytest.raises(IPCError):
        frames.read_messages()
