"""The fast paths, one seam for both ends: fixed-row templates and the constant producer tick.

Both the client and the server use this module; each shortcut returns None when it does not
apply, and the caller takes the general path (``tests/core/test_codec.py`` and
``tests/core/test_dispatch_templates.py`` run the same calls through both and compare).

**Templates.** One-row IPC streams of fixed-width scalars are encoded without building Arrow arrays.

A unary request whose parameters are all ``int`` (int64), ``float`` (float64) or ``bool`` (or
that has none), and a unary reply holding one such value (or none, for a void method), have the
same IPC bytes on every call except the eight body bytes of each column: the schema message, the
record-batch flatbuffer (lengths, buffer offsets, custom metadata) and the end-of-stream marker
do not change. ``FixedRowCodec`` keeps those bytes as a template, made once by pyarrow, and
packs only the values with ``struct``; reading, it checks that a stream has exactly the
template's layout and unpacks the values.

The template is checked when it is made: pyarrow's own encoding of two different sample rows
must equal the codec's, byte for byte, or no codec is made and callers use the general path.
Values the fast path cannot take exactly as pyarrow would (a ``None``, an ``int`` for a float
column, a ``bool`` for an int column, an out-of-range integer) make ``encode`` return None, so
the general path produces the usual result or error.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from . import keys
from .ipc import TICK_MESSAGE, encode_stream
from .varrow import VarRowCodec

if TYPE_CHECKING:  # at run time only their attributes are read (and service imports dataclass, which imports this)
    from .service import MethodSpec, ServiceSpec

__all__ = [
    "TICK_MESSAGE",
    "FixedRowCodec",
    "RowCodec",
    "VarRowCodec",
    "decode_stream",
    "request_codec",
    "request_metadata",
    "result_codec",
    "row_codec",
]

_EOS: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_SLOT: Final = 8  # each column's data buffer, padded to 8 bytes; empty validity buffers take none

# arrow type -> (struct format of one padded slot, the Python type taken as is)
_FORMATS: Final[dict[pa.DataType, tuple[str, type]]] = {
    pa.int64(): ("q", int),
    pa.float64(): ("d", float),
    pa.bool_(): ("?7x", bool),  # one bit-packed byte: bit 0 is the value
}


class FixedRowCodec:
    """Template-based encoding of one-row streams of int64 / float64 / bool columns."""

    __slots__ = (
        "_batch_header",
        "_bools",
        "_prefix",
        "_reader",
        "_schema_message",
        "_struct",
        "_types",
        "row_bytes",
        "suffix",
    )

    def __init__(self, prefix: bytes, fmt: str, types: tuple[type, ...]) -> None:
        self._prefix = prefix
        self._struct = struct.Struct("<" + fmt)
        # reading: a bool is bit 0 of its byte, whatever the other bits hold
        self._reader = struct.Struct("<" + fmt.replace("?", "B"))
        self._bools = tuple(i for i, t in enumerate(types) if t is bool)
        self._types = types
        self.suffix = b"\xff\xff\xff\xff\x00\x00\x00\x00"
        schema_length = 8 + struct.unpack_from("<i", prefix, 4)[0]
        self._schema_message = prefix[:schema_length]
        self._batch_header = prefix[schema_length:]
        self.row_bytes = 0  # Arrow buffer bytes of one row (what CallStatistics counts for it)

    @classmethod
    def build(cls, schema: pa.Schema, metadata: Mapping[bytes, bytes] | None = None) -> FixedRowCodec | None:
        """A codec for one-row batches of *schema* carrying *metadata*, or None if it does not apply."""
        formats = []
        types = []
        for f in schema:
            entry = _FORMATS.get(f.type)
            if entry is None or f.metadata:
                return None
            formats.append(entry[0])
            types.append(entry[1])
        samples = [
            [t(0) if t is not bool else False for t in types],
            [{int: -(2**62) + 3, float: -1.5e300, bool: True}[t] for t in types],
        ]
        try:
            references = [_general(schema, row, metadata) for row in samples]
        except (pa.ArrowException, TypeError, ValueError):  # pragma: no cover - defensive
            return None
        body = _SLOT * len(schema)
        prefix = references[0][: -body - 8]
        codec = cls(prefix, "".join(formats), tuple(types))
        if any(codec.encode(row) != ref for row, ref in zip(samples, references, strict=True)):
            return None
        codec.row_bytes = sum(1 if t is bool else _SLOT for t in types)
        return codec

    def row_bytes_of(self, row: Sequence[Any]) -> int:
        """Arrow buffer bytes of a row (the same for every row of fixed-width columns)."""
        return self.row_bytes

    @property
    def schema_message(self) -> bytes:
        """The schema message every stream of this codec starts with."""
        return self._schema_message

    @property
    def batch_header(self) -> bytes:
        """The record-batch message up to its body (framing, flatbuffer with metadata)."""
        return self._batch_header

    def encode(self, values: Sequence[Any]) -> bytes | None:
        """The whole IPC stream for one row of *values*; None when the general path must be used."""
        for value, expected in zip(values, self._types, strict=True):
            if type(value) is not expected:
                return None
        try:
            body = self._struct.pack(*values)
        except struct.error:  # out of range: the general path raises the proper error
            return None
        return self._prefix + body + self.suffix

    def decode(self, messages: Sequence[tuple[bytes | bytearray | memoryview, bool]]) -> tuple[Any, ...] | None:
        """The row of a stream read by ``FrameReader.read_messages``, or None unless it has this layout.

        The layout matches when the schema message and the batch header are the template's bytes
        and there is no other message (no log, no error).
        """
        if len(messages) != 2:
            return None
        (schema_message, _), (batch, _) = messages
        header = self._batch_header
        if (
            schema_message != self._schema_message
            or len(batch) != len(header) + self._reader.size
            or batch[: len(header)] != header
        ):
            return None
        row = self._reader.unpack_from(batch, len(header))
        if self._bools:
            values = list(row)
            for i in self._bools:
                values[i] = bool(values[i] & 1)
            return tuple(values)
        return row


def _general(schema: pa.Schema, row: Sequence[Any], metadata: Mapping[bytes, bytes] | None) -> bytes:
    arrays = [pa.array([v], type=f.type) for v, f in zip(row, schema, strict=True)]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    return bytes(encode_stream(schema, ((batch, metadata),)).to_pybytes())


def request_metadata(
    service: ServiceSpec, method: MethodSpec, extra: Mapping[bytes, bytes] | None = None
) -> dict[bytes, bytes]:
    """The custom metadata of every request batch for *method*: routing and version keys, then *extra*.

    *extra* is what a transport adds to every request (a shared-memory segment's name and size).
    """
    md = {
        keys.METHOD: method.name.encode(),
        keys.REQUEST_VERSION_KEY: keys.REQUEST_VERSION_B,
        keys.PROTOCOL: service.name.encode(),
    }
    if service.version is not None:
        md[keys.PROTOCOL_VERSION] = service.version.encode()
    if extra:
        md.update(extra)
    return md


RowCodec = FixedRowCodec | VarRowCodec


def row_codec(schema: pa.Schema, metadata: Mapping[bytes, bytes] | None = None) -> RowCodec | None:
    """The template for one-row streams of *schema* (fixed-width, or with strings and bytes), if any."""
    return FixedRowCodec.build(schema, metadata) or VarRowCodec.build(schema, metadata)


def decode_stream(codec: RowCodec, data: bytes) -> tuple[Any, ...] | None:
    """The row of one whole IPC stream in memory (schema, batch, EOS), or None unless *codec* wrote it."""
    schema_message = codec.schema_message
    if not data.startswith(schema_message) or not data.endswith(_EOS):
        return None
    return codec.decode([(schema_message, False), (data[len(schema_message) : -len(_EOS)], False)])


def with_stream_offer(method: MethodSpec, extra: Mapping[bytes, bytes] | None) -> Mapping[bytes, bytes] | None:
    """What our client adds to a stream call's request: the ticks-ahead offer (``keys.TICK_AHEAD``)."""
    if not method.is_stream:
        return extra
    return {**(extra or {}), keys.TICK_AHEAD: b"1"}


def request_codec(
    service: ServiceSpec, method: MethodSpec, extra: Mapping[bytes, bytes] | None = None
) -> RowCodec | None:
    """The template of *method*'s request as our client writes it (a stream call's with the offer).

    Only when its parameters are all int/float/bool/str/bytes (or none).
    """
    if any(p.encode is not None or p.decode is not None for p in method.params):
        return None
    return row_codec(method.params_schema, request_metadata(service, method, with_stream_offer(method, extra)))


def result_codec(method: MethodSpec) -> RowCodec | None:
    """The template of *method*'s reply, when it holds one int/float/bool/str/bytes (or nothing: void)."""
    if method.is_stream or method.decode_result is not None or method.encode_result is not None:
        return None
    return row_codec(method.result_schema, None)
