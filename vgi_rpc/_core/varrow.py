"""One-row templates with strings and bytes: the fixed-row template of ``codec.py``, for variable widths.

A one-row batch of int64 / float64 / bool / utf8 / binary columns has the same IPC bytes on every
call except: each string's length in its offsets buffer and its bytes in the body, and in the
record-batch flatbuffer the (offset, length) of every buffer after a string and the body length,
all little-endian int64s at fixed places. ``VarRowCodec`` keeps pyarrow's own encoding of a sample
row as the template, finds those places by walking the flatbuffer once (``Message.bodyLength``,
``RecordBatch.buffers``), and writes them for each row. Reading, it rebuilds the header the lengths
in a received message imply and takes the message only when the two are equal byte for byte, the
offsets are exactly ``[0, n]`` and every string is valid UTF-8; anything else returns None and the
caller takes the general path (which raises the proper error for bad input).

The template is checked when it is made: pyarrow's encoding of three sample rows with different
lengths must equal the codec's byte for byte, or no codec is made.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from .flatbuf import table_field
from .ipc import encode_stream
from .wholes import Hollow

__all__ = ["VarRowCodec"]

MAX_VAR_BYTES: Final = 1 << 15  # longer strings go the general path (big bytes are wrapped, not copied)
_EOS: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_I64 = struct.Struct("<q")
_OFFSETS = struct.Struct("<ii")

# column kind: (struct format of the fixed value, Python type) or "var" (utf8 / binary)
_FIXED: Final[dict[pa.DataType, tuple[struct.Struct, type]]] = {
    pa.int64(): (struct.Struct("<q"), int),
    pa.float64(): (struct.Struct("<d"), float),
    pa.bool_(): (struct.Struct("<?7x"), bool),
}
_VAR: Final[dict[pa.DataType, type]] = {pa.string(): str, pa.binary(): bytes}


def _exactly(value: Any, expected: type) -> bool:
    return type(value) is expected


def _pad(n: int) -> int:
    return (n + 7) & ~7


class VarRowCodec:
    """Template-based encoding of one-row streams with at least one utf8 / binary column."""

    __slots__ = ("_body_pos", "_buffers_pos", "_columns", "_header", "_schema_message", "_types")

    def __init__(self, schema_message: bytes, header: bytes, columns: tuple[Any, ...], types: tuple[type, ...]) -> None:
        self._schema_message = schema_message
        self._header = header  # the sample's batch message up to its body
        self._columns = columns  # per column: a fixed struct, or None for a var-width one
        self._types = types
        meta = header
        table = 8 + _U32(meta, 8)[0]
        self._body_pos = table_field(meta, table, 3)
        header_field = table_field(meta, table, 2)
        batch = header_field + _U32(meta, header_field)[0]
        vector = table_field(meta, batch, 2)
        self._buffers_pos = vector + _U32(meta, vector)[0] + 4  # the first Buffer struct

    @property
    def schema_message(self) -> bytes:
        """The schema message every stream of this codec starts with."""
        return self._schema_message

    @classmethod
    def build(cls, schema: pa.Schema, metadata: Mapping[bytes, bytes] | None = None) -> VarRowCodec | None:
        """A codec for one-row batches of *schema* carrying *metadata*, or None if it does not apply."""
        columns: list[Any] = []
        types: list[type] = []
        for f in schema:
            if f.metadata:
                return None
            if f.type in _VAR:
                columns.append(None)
                types.append(_VAR[f.type])
            elif f.type in _FIXED:
                columns.append(_FIXED[f.type][0])
                types.append(_FIXED[f.type][1])
            else:
                return None
        if None not in columns:
            return None  # all fixed: codec.FixedRowCodec's job
        samples = [[_sample(t, k) for t in types] for k in (3, 11, 0)]
        try:
            references = [_general(schema, row, metadata) for row in samples]
            schema_length = 8 + _I32(references[0], 4)[0]
            header_end = schema_length + 8 + _I32(references[0], schema_length + 4)[0]
            codec = cls(
                references[0][:schema_length], references[0][schema_length:header_end], tuple(columns), tuple(types)
            )
            if any(codec.encode(row) != ref for row, ref in zip(samples, references, strict=True)):
                return None
        except (pa.ArrowException, struct.error, TypeError, ValueError, IndexError):  # pragma: no cover - defensive
            return None
        return codec

    def _layout(self, lengths: Sequence[int]) -> tuple[bytearray, int]:
        """The batch header for these var-width lengths (one per var column), and the body length."""
        header = bytearray(self._header)
        pos, offset, k = self._buffers_pos, 0, 0
        pack = _I64.pack_into
        for column in self._columns:
            pack(header, pos, offset)  # validity: none (no nulls)
            pack(header, pos + 8, 0)
            pos += 16
            if column is None:
                n = lengths[k]
                k += 1
                pack(header, pos, offset)  # offsets [0, n]
                pack(header, pos + 8, 8)
                pack(header, pos + 16, offset + 8)  # the bytes
                pack(header, pos + 24, n)
                pos += 32
                offset += 8 + _pad(n)
            else:
                pack(header, pos, offset)
                pack(header, pos + 8, 1 if column.format == "<?7x" else 8)
                pos += 16
                offset += 8
        pack(header, self._body_pos, offset)
        return header, offset

    def encode(self, values: Sequence[Any]) -> bytes | None:
        """The whole IPC stream for one row of *values*; None when the general path must be used."""
        body: list[bytes] = []
        lengths: list[int] = []
        total = 0
        for value, column, expected in zip(values, self._columns, self._types, strict=True):
            if not _exactly(value, expected):  # a bool is no int here, a str subclass no str
                return None
            if column is None:
                data: bytes = value.encode() if expected is str else value
                n = len(data)
                total += n
                lengths.append(n)
                body.append(_OFFSETS.pack(0, n))
                body.append(data)
                body.append(b"\x00" * (_pad(n) - n))
            else:
                try:
                    body.append(column.pack(value))
                except struct.error:  # out of range: the general path raises the proper error
                    return None
        if total > MAX_VAR_BYTES:
            return None
        header, _ = self._layout(lengths)
        return b"".join([self._schema_message, header, *body, _EOS])

    def decode(self, messages: Sequence[tuple[bytes | bytearray | memoryview, bool]]) -> tuple[Any, ...] | None:
        """The row of a stream read by ``FrameReader.read_messages``, or None unless it has this layout."""
        if len(messages) != 2 or messages[0][0] != self._schema_message:
            return None
        batch = messages[1][0]
        size = len(self._header)
        if len(batch) < size or isinstance(batch, Hollow):  # a hollow message's values are elsewhere
            return None
        lengths = []
        pos = self._buffers_pos
        for column in self._columns:
            pos += 16
            if column is None:
                n = _I64.unpack_from(batch, pos + 24)[0]
                if not 0 <= n <= MAX_VAR_BYTES:
                    return None
                lengths.append(n)
                pos += 32
            else:
                pos += 16
        header, body_length = self._layout(lengths)
        if batch[:size] != header or len(batch) != size + body_length:
            return None
        return self._values(batch, size, lengths)

    def _values(self, batch: Any, at: int, lengths: list[int]) -> tuple[Any, ...] | None:
        row: list[Any] = []
        k = 0
        for column, expected in zip(self._columns, self._types, strict=True):
            if column is None:
                n = lengths[k]
                k += 1
                if _OFFSETS.unpack_from(batch, at) != (0, n):
                    return None
                data = bytes(batch[at + 8 : at + 8 + n])
                if expected is str:
                    try:
                        row.append(data.decode())
                    except UnicodeDecodeError:
                        return None
                else:
                    row.append(data)
                at += 8 + _pad(n)
            else:
                value = column.unpack_from(batch, at)[0]
                row.append(bool(batch[at] & 1) if expected is bool else value)
                at += 8
        return tuple(row)

    def row_bytes_of(self, row: Sequence[Any]) -> int:
        """Arrow buffer bytes of *row* (what ``CallStatistics`` counts for it)."""
        total = 0
        for value, column, expected in zip(row, self._columns, self._types, strict=True):
            if column is None:
                total += 8 + len(value.encode() if expected is str else value)
            else:
                total += 1 if expected is bool else 8
        return total


def _sample(t: type, k: int) -> Any:
    if t is str:
        return "é" * k  # two UTF-8 bytes per character: lengths in bytes, not characters
    if t is bytes:
        return b"\x01" * (k + 2)
    return {int: -(2**62) + k, float: -1.5e300 + k, bool: bool(k % 2)}[t]


def _general(schema: pa.Schema, row: Sequence[Any], metadata: Mapping[bytes, bytes] | None) -> bytes:
    arrays = [pa.array([v], type=f.type) for v, f in zip(row, schema, strict=True)]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    return bytes(encode_stream(schema, ((batch, metadata),)).to_pybytes())
