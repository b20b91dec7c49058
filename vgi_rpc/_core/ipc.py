"""Arrow IPC stream helpers: one buffer per message, one reader per connection.

A connection carries back-to-back IPC streams with no framing between them. Writers build each
stream completely in memory and hand the bytes to the driver in one piece; readers open streams
one after another on the same buffered byte source.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import pyarrow as pa

from ..errors import IPCError, MalformedStreamError, TransportError

__all__ = [
    "BIG_BYTES",
    "EMPTY_SCHEMA",
    "IpcValidation",
    "Item",
    "Items",
    "Metadata",
    "encode_chunks",
    "encode_stream",
    "to_kv",
    "validate",
]

EMPTY_SCHEMA: Final = pa.schema([])
# a batch with at least this many buffer bytes is written as chunks (its column buffers not copied)
BIG_BYTES: Final = 1 << 16

# Explicit options skip pyarrow's per-call environment lookups for its defaults.
WRITE_OPTIONS: Final = pa.ipc.IpcWriteOptions()
READ_OPTIONS: Final = pa.ipc.IpcReadOptions(use_threads=False)


def new_writer(sink: Any, schema: pa.Schema) -> pa.ipc.RecordBatchStreamWriter:
    """A stream writer with our fixed options."""
    return pa.ipc.new_stream(sink, schema, options=WRITE_OPTIONS)


def open_reader(source: Any) -> pa.ipc.RecordBatchStreamReader:
    """A stream reader with our fixed options."""
    return pa.ipc.open_stream(source, options=READ_OPTIONS)


Metadata = Mapping[bytes, bytes]


class IpcValidation(enum.Enum):
    """How thoroughly received record batches are checked before use."""

    NONE = "none"  # no checks
    STANDARD = "standard"  # structural checks (cheap)
    FULL = "full"  # structural + data buffers (default)


def validate(batch: pa.RecordBatch, level: IpcValidation) -> None:
    """Validate a received batch at *level*; raises ``pa.ArrowInvalid`` on corrupt data."""
    if level is IpcValidation.FULL:
        batch.validate(full=True)
    elif level is IpcValidation.STANDARD:
        batch.validate()


def to_kv(metadata: Mapping[bytes, bytes] | Mapping[str, str] | None) -> pa.KeyValueMetadata | None:
    """Custom metadata as pyarrow wants it (None stays None)."""
    if not metadata:
        return None
    return pa.KeyValueMetadata(metadata)


def encode_stream(
    schema: pa.Schema,
    batches: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
    *,
    end: bool = True,
) -> pa.Buffer:
    """One complete IPC stream (schema, dictionaries, batches, EOS) in a single buffer."""
    sink = pa.BufferOutputStream()
    writer = new_writer(sink, schema)
    for batch, md in batches:
        writer.write_batch(batch, custom_metadata=to_kv(md))
    if end:
        writer.close()
    return sink.getvalue()


def encode_chunks(
    schema: pa.Schema, batches: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]]
) -> list[Any]:
    """One complete IPC stream as chunks to write in order: column buffers are not copied (big batches)."""
    writer = StreamWriter(schema)
    for batch, md in batches:
        writer.write(batch, md)
    writer.end()
    return writer.take()


def one_batch(schema: pa.Schema, batch: pa.RecordBatch, md: Mapping[bytes, bytes] | None = None) -> pa.Buffer:
    """A one-batch IPC stream in a single buffer."""
    return encode_stream(schema, ((batch, md),))


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A zero-row batch with one empty column per field of *schema*."""
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


Item = tuple[pa.RecordBatch, dict[bytes, bytes] | None]  # a batch and its custom metadata
Items = list[Item]


def decode_stream(data: bytes | bytearray) -> tuple[pa.Schema, Items]:
    """Decode one complete IPC stream held in memory; ``IPCError`` if it is malformed."""
    try:
        return read_stream(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:  # pyarrow reports some decode failures as OSError
        raise MalformedStreamError(f"malformed Arrow IPC stream: {exc}") from exc


def read_stream(source: Any) -> tuple[pa.Schema, Items]:
    """Read one complete IPC stream (up to and including EOS) from a file-like *source*.

    The reader stops exactly at the end-of-stream marker, so successive calls on the same buffered
    source read successive streams. Raises ``pa.ArrowInvalid`` (or ``OSError``) on bad framing.
    """
    reader = open_reader(source)
    items: Items = []
    read = reader.read_next_batch_with_custom_metadata
    while True:
        try:
            batch, md = read()
        except StopIteration:
            break
        items.append((batch, dict(md) if md is not None else None))
    return reader.schema, items


class _Chunks:
    """A write-only sink that keeps what pyarrow writes until it is taken."""

    __slots__ = ("chunks", "closed")

    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self.closed = False

    def write(self, data: Any) -> int:
        # pyarrow hands over bytes for metadata and refcounted Buffers for column data: keep
        # both as they are (no copy); anything else is copied, as it may not outlive the call
        self.chunks.append(data if isinstance(data, bytes | pa.Buffer) else bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


# A small batch is serialized in one C++ call (one buffer, no Python sink callbacks); above this
# size the stream writer hands its column buffers over without copying them, which matters more.
_SERIALIZE_MAX_BYTES: Final = 1 << 16
EOS: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # end-of-stream marker

# serialized schema message -> (schema, has dictionaries); stream schemas repeat call after call
_SCHEMAS: dict[bytes, tuple[pa.Schema, bool]] = {}
_SCHEMAS_MAX: Final = 512


_SCHEMA_CACHE_MAX_BYTES: Final = 1 << 16  # larger schema messages are decoded every time


def schema_info(message: bytes, schema: pa.Schema | None = None) -> tuple[pa.Schema, bool]:
    """The schema of a serialized schema *message* and whether it has dictionaries (cached)."""
    info = _SCHEMAS.get(message)
    if info is None:
        if schema is None:
            schema = pa.ipc.read_schema(pa.py_buffer(message))
        info = (schema, has_dictionary(schema))
        if len(message) <= _SCHEMA_CACHE_MAX_BYTES:
            if len(_SCHEMAS) >= _SCHEMAS_MAX:
                _SCHEMAS.clear()
            _SCHEMAS[message] = info
    return info


def has_dictionary(schema: pa.Schema) -> bool:
    """True when any field, at any depth, is dictionary-encoded (its stream carries dictionary batches)."""
    return any(_type_has_dictionary(f.type) for f in schema)


def _type_has_dictionary(t: pa.DataType) -> bool:
    if isinstance(t, pa.DictionaryType):
        return True
    if isinstance(t, pa.ExtensionType):
        return _type_has_dictionary(t.storage_type)
    return any(_type_has_dictionary(t.field(i).type) for i in range(t.num_fields))


class StreamWriter:
    """Writes one IPC stream in steps; ``take()`` returns the chunks each step added (write them in order).

    For a schema without dictionaries the stream is framed here: the schema message, each small
    plain batch as one ``RecordBatch.serialize()`` buffer and the end-of-stream marker. Batches
    with custom metadata or a large body go through pyarrow's stream writer (created on first
    need, its copy of the schema message dropped), which hands column buffers over without
    copying. Streams with dictionaries use pyarrow's writer throughout. The bytes are the same
    either way (``tests/core/test_stream_codec.py`` checks them against pyarrow).
    """

    __slots__ = ("_direct", "_schema_message", "_sink", "_skip", "_started", "_writer", "schema")

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self._sink = _Chunks()
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema_message = schema.serialize().to_pybytes()
        self._direct = not schema_info(self._schema_message, schema)[1]
        self._started = False
        self._skip = 0  # bytes of pyarrow's own schema message still to drop

    def _start(self) -> None:
        self._started = True
        if self._direct:
            self._sink.chunks.append(self._schema_message)
        else:
            self._writer = new_writer(self._sink, self.schema)

    def write(self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None = None) -> None:
        """Append one batch."""
        if not self._started:
            self._start()
        writer = self._writer
        if self._direct:
            if (
                not metadata
                and batch.get_total_buffer_size() <= _SERIALIZE_MAX_BYTES
                and batch.schema.equals(self.schema)
            ):
                self._sink.chunks.append(batch.serialize())
                return
            if writer is None:
                # pyarrow's writer starts with the schema message again: drop it from the output
                writer = self._writer = new_writer(self._sink, self.schema)
                self._skip = len(self._schema_message)
        assert writer is not None
        mark = len(self._sink.chunks)
        try:
            writer.write_batch(batch, custom_metadata=to_kv(metadata))
        finally:
            if self._skip:
                self._drop_schema_copy(mark)

    def _drop_schema_copy(self, mark: int) -> None:
        """Drop pyarrow's schema message, written from chunk *mark* on."""
        chunks = self._sink.chunks
        while self._skip and len(chunks) > mark:
            first = chunks[mark]
            if len(first) <= self._skip:
                self._skip -= len(first)
                del chunks[mark]
            else:
                chunks[mark] = memoryview(first)[self._skip :]
                self._skip = 0

    def end(self) -> None:
        """Append the end-of-stream marker (writing the schema first if nothing was written)."""
        if not self._started:
            self._start()
        if self._writer is not None and not self._direct:
            self._writer.close()
        else:
            self._sink.chunks.append(EOS)

    def take(self) -> list[Any]:
        """The chunks appended since the last take (gathered by the driver's write, not joined here)."""
        chunks = self._sink.chunks
        self._sink.chunks = []
        return chunks


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn pyarrow and OS read failures into TransportError (EOF) or IPCError (bad bytes)."""
    try:
        yield
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "Expected to be able to read" in text or "was null or length 0" in text:
            raise TransportError(f"the peer closed the connection mid-message ({text})") from exc
        raise IPCError(f"malformed Arrow IPC from the peer: {text}") from exc
    except TransportError:
        raise
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot read from the peer: {exc}") from exc


TICK: Final = pa.RecordBatch.from_arrays([], schema=EMPTY_SCHEMA)
_SCHEMA_ONLY: Final = encode_stream(EMPTY_SCHEMA, ()).to_pybytes()
EMPTY_STREAM: Final = bytes(_SCHEMA_ONLY)  # an empty-schema stream with no batches (64 bytes)
# one plain producer tick inside an open empty-schema stream (between its schema and EOS)
TICK_MESSAGE: Final = bytes(encode_stream(EMPTY_SCHEMA, ((TICK, None),)).to_pybytes()[len(_SCHEMA_ONLY) - 8 : -8])
