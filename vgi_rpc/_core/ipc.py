"""Arrow IPC stream helpers: one buffer per message, one reader per connection.

A connection carries back-to-back IPC streams with no framing between them. Writers build each
stream completely in memory and hand the bytes to the driver in one piece; readers open streams
one after another on the same buffered byte source.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final

import pyarrow as pa

__all__ = [
    "EMPTY_SCHEMA",
    "IpcValidation",
    "Metadata",
    "encode_stream",
    "metadata_dict",
    "to_kv",
    "validate",
]

EMPTY_SCHEMA: Final = pa.schema([])

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


def metadata_dict(kv: pa.KeyValueMetadata | None) -> dict[bytes, bytes]:
    """Custom metadata read back from a batch as a plain dict (empty when absent)."""
    if kv is None:
        return {}
    return dict(kv)


def encode_stream(
    schema: pa.Schema,
    batches: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
    *,
    end: bool = True,
) -> pa.Buffer:
    """One complete IPC stream (schema, dictionaries, batches, EOS) in a single buffer."""
    sink = pa.BufferOutputStream()
    writer = pa.ipc.new_stream(sink, schema)
    for batch, md in batches:
        writer.write_batch(batch, custom_metadata=to_kv(md))
    if end:
        writer.close()
    return sink.getvalue()


def one_batch(schema: pa.Schema, batch: pa.RecordBatch, md: Mapping[bytes, bytes] | None = None) -> pa.Buffer:
    """A one-batch IPC stream in a single buffer."""
    return encode_stream(schema, ((batch, md),))


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A zero-row batch with one empty column per field of *schema*."""
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def as_bytes(buf: Any) -> bytes:
    """Bytes of a pyarrow Buffer or bytes-like value."""
    return buf.to_pybytes() if isinstance(buf, pa.Buffer) else bytes(buf)


Items = list[tuple[pa.RecordBatch, dict[bytes, bytes] | None]]


def read_stream(source: Any) -> tuple[pa.Schema, Items]:
    """Read one complete IPC stream (up to and including EOS) from a file-like *source*.

    The reader stops exactly at the end-of-stream marker, so successive calls on the same buffered
    source read successive streams. Raises ``pa.ArrowInvalid`` (or ``OSError``) on bad framing.
    """
    reader = pa.ipc.open_stream(source)
    items: Items = []
    read = reader.read_next_batch_with_custom_metadata
    while True:
        try:
            batch, md = read()
        except StopIteration:
            break
        items.append((batch, dict(md) if md is not None else None))
    return reader.schema, items
