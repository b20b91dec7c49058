"""One-batch streams with dictionary columns: the kept-dictionary path gives what pyarrow's reader gives."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgi_rpc._core.framing import _DICTIONARY_STREAMS, decode_messages, split_streams
from vgi_rpc._core.ipc import encode_stream
from vgi_rpc.errors import MalformedStreamError

COLORS = ["red", "green", "blue"]
SCHEMA = pa.schema(
    [
        pa.field("color", pa.dictionary(pa.int16(), pa.string()), nullable=True),
        pa.field("n", pa.int64()),
        pa.field("tags", pa.map_(pa.string(), pa.int64())),
    ]
)


def stream(color: str | None, n: int, md: dict[bytes, bytes] | None, dictionary: list[str] | None = None) -> bytes:
    col = pa.DictionaryArray.from_arrays(
        pa.array([None if color is None else (dictionary or COLORS).index(color)], pa.int16()),
        pa.array(dictionary or COLORS),
    )
    batch = pa.RecordBatch.from_arrays(
        [col, pa.array([n]), pa.array([[("k", n)]], SCHEMA.field("tags").type)], schema=SCHEMA
    )
    return encode_stream(SCHEMA, [(batch, md)]).to_pybytes()


def pyarrow_reads(data: bytes) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None]:
    reader = pa.ipc.open_stream(data)
    batch, md = reader.read_next_batch_with_custom_metadata()
    return batch, (dict(md) if md is not None else None)


@settings(max_examples=60, deadline=None)
@given(
    color=st.sampled_from([*COLORS, None]),
    n=st.integers(-(2**63), 2**63 - 1),
    md=st.one_of(
        st.none(), st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8), min_size=1, max_size=3)
    ),
)
def test_the_kept_dictionary_path_reads_what_pyarrow_reads(
    color: str | None, n: int, md: dict[bytes, bytes] | None
) -> None:
    data = stream(color, n, md)
    for _ in range(2):  # the first decode keeps the dictionary, the second uses it
        schema, items = decode_messages(split_streams(data)[0])
        assert schema.equals(SCHEMA)
        batch, got_md = items[0]
        want, want_md = pyarrow_reads(data)
        assert batch.equals(want) and batch.schema.equals(want.schema)
        assert batch.column(0).to_pylist() == [color]
        assert got_md == want_md


def test_another_dictionary_is_another_prefix() -> None:
    first = decode_messages(split_streams(stream("blue", 1, None))[0])[1][0][0]
    other = decode_messages(split_streams(stream("blue", 1, None, ["blue", "red"]))[0])[1][0][0]
    again = decode_messages(split_streams(stream("blue", 1, None, ["blue", "red"]))[0])[1][0][0]
    assert first.column(0).dictionary.to_pylist() == COLORS
    assert other.column(0).dictionary.to_pylist() == again.column(0).dictionary.to_pylist() == ["blue", "red"]
    assert again.column(0).to_pylist() == ["blue"]


def test_an_index_past_the_kept_dictionary_is_malformed() -> None:
    good = split_streams(stream("red", 1, None))[0]
    decode_messages(good)  # kept
    bad = pa.RecordBatch.from_arrays(
        [
            pa.DictionaryArray.from_arrays(pa.array([0], pa.int16()), pa.array(COLORS)),
            pa.array([1]),
            pa.array([[("k", 1)]], SCHEMA.field("tags").type),
        ],
        schema=SCHEMA,
    )
    message = bad.serialize().to_pybytes()
    body = 8 + int.from_bytes(message[4:8], "little")  # no validity buffer: the int16 index comes first
    assert message[body : body + 2] == b"\x00\x00"
    forged = [*good[:-1], (message[:body] + (7).to_bytes(2, "little") + message[body + 2 :], False)]
    with pytest.raises(MalformedStreamError):
        decode_messages(forged)


def test_two_batches_and_nested_dictionaries_go_to_pyarrow() -> None:
    col = pa.DictionaryArray.from_arrays(pa.array([1], pa.int16()), pa.array(COLORS))
    schema = pa.schema([pa.field("color", col.type)])
    two = encode_stream(schema, [(pa.record_batch([col], schema=schema), None)] * 2).to_pybytes()
    for _ in range(2):
        items = decode_messages(split_streams(two)[0])[1]
        assert [b.column(0).to_pylist() for b, _ in items] == [["green"], ["green"]]
    nested = pa.ListArray.from_arrays(pa.array([0, 1]), col)
    schema = pa.schema([pa.field("colors", nested.type)])
    data = encode_stream(schema, [(pa.record_batch([nested], schema=schema), None)]).to_pybytes()
    prefix = b"".join(bytes(m) for m, _ in split_streams(data)[0][:-1])
    for _ in range(2):
        assert decode_messages(split_streams(data)[0])[1][0][0].column(0).to_pylist() == [["green"]]
    assert _DICTIONARY_STREAMS._known[prefix] is None  # not kept: pyarrow reads it every time
