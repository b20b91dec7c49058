"""Big ``bytes`` values read from the wire straight into their own ``bytes`` objects.

A one-row record batch carrying a big binary value (an ``echo(data: bytes)`` argument or result)
would otherwise be copied twice on arrival: from the pipe into the message buffer, then out of it
into the ``bytes`` object the user gets. Here the reader takes the value's buffer out of the body
as it reads it: one read straight into a ``bytes`` object of exactly its length (the other buffers
are read as usual). What remains is a *hollow* message: the same message with that buffer emptied
in its flatbuffer (length 0, later offsets moved up), decoded by pyarrow as usual, after which the
column is rebuilt around the ``bytes`` object, wrapped without a copy. ``first_value`` then hands
that very object to the user instead of copying it out of the column.

Which buffers may be taken is known from the stream's schema alone (``Plan``): the data buffers of
top-level ``binary`` / ``large_binary`` columns, found by counting the IPC buffers of the fields
before them as pyarrow writes them. A message is read hollow only when it is an uncompressed
record batch of one row whose planned buffers are big and overlap no other buffer; anything else
is read whole, as before. Only the standard library and pyarrow.
"""

from __future__ import annotations

import struct
import weakref
from typing import Any, Final

import pyarrow as pa

from .flatbuf import RECORD_BATCH, header_type, table_field
from .ipc import schema_info

__all__ = [
    "WHOLE_MIN",
    "Hollow",
    "Plan",
    "first_value",
    "hollow_for",
    "hollow_layout",
    "hollow_message",
    "hollow_reads",
    "plan_for",
    "plan_of",
    "wrap",
]

WHOLE_MIN: Final = 1 << 20  # smaller values are copied out of the message as usual
_V5: Final = 4  # flatbuffer MetadataVersion.V5: the buffer layouts ``plan_for`` counts (pyarrow's)
_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I64 = struct.Struct("<q")
_BINARY: Final = {pa.binary(): struct.Struct("<ii"), pa.large_binary(): struct.Struct("<qq")}

# (column index, index of its data buffer among the batch's IPC buffers), per schema
Plan = tuple[tuple[int, int], ...]
_PLANS: dict[pa.Schema, Plan] = {}
_PLANS_MAX: Final = 256


def _batch_fields(meta: Any, start: int) -> tuple[int, int, int, int] | None:
    """Where an uncompressed record batch's message at *start* of *meta* keeps its buffers.

    Its row count, the position of its first ``Buffer`` struct, their number and the position of
    ``bodyLength``; None for any other message (``struct.error`` / ``IndexError`` when malformed).
    """
    message = start + _U32(meta, start)[0]
    version = table_field(meta, message, 0)
    if not version or _U16(meta, version)[0] < _V5:  # older metadata lays some types out otherwise
        return None
    header = table_field(meta, message, 2)
    body = table_field(meta, message, 3)
    if header_type(meta, start) != RECORD_BATCH or not header or not body:
        return None
    batch = header + _U32(meta, header)[0]
    if table_field(meta, batch, 3):  # compressed: the buffers are not the values
        return None
    rows = table_field(meta, batch, 0)
    vector = table_field(meta, batch, 2)
    if not rows or not vector:
        return None
    vector += _U32(meta, vector)[0]
    return _I64.unpack_from(meta, rows)[0], vector + 4, _U32(meta, vector)[0], body


def _buffer_count(field: pa.Field) -> int | None:
    """How many IPC buffers pyarrow writes for a column of *field* (None: cannot tell)."""
    try:
        column = pa.nulls(1, field.type)
        batch = pa.RecordBatch.from_arrays([column], schema=pa.schema([field]))
        message = batch.serialize().to_pybytes()
        found = _batch_fields(message, 8)
    except (pa.ArrowException, struct.error, IndexError, TypeError, ValueError):
        return None
    return None if found is None else found[2]


def plan_for(schema: pa.Schema) -> Plan:
    """The buffers a one-row batch of *schema* may have taken out (cached per schema)."""
    plan = _PLANS.get(schema)
    if plan is None:
        found: list[tuple[int, int]] = []
        at = 0
        last = max((i for i, f in enumerate(schema) if f.type in _BINARY), default=-1)
        for i, field in enumerate(schema):
            if i > last:
                break
            if field.type in _BINARY:
                found.append((i, at + 2))  # validity, offsets, data
            count = _buffer_count(field)
            if count is None:
                break
            at += count
        plan = tuple(found)
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[schema] = plan
    return plan


def hollow_layout(meta: bytes, start: int, plan: Plan, body: int) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """How to read the body of the message whose flatbuffer is at *start* of *meta*, hollow.

    Returns the flatbuffer with the taken buffers emptied (to frame the hollow message with) and
    the taken buffers as (column, offset in the body, length), in body order; None when the
    message is to be read whole (not a one-row uncompressed batch, no big planned buffer, or a
    layout that is not plainly laid out: overlapping buffers, a buffer past the body).
    """
    try:
        fields = _batch_fields(meta, start)
        if fields is None:
            return None
        rows, first, count, body_pos = fields
        if rows != 1 or first + 16 * count > len(meta):
            return None
        spans = [
            (_I64.unpack_from(meta, at)[0], _I64.unpack_from(meta, at + 8)[0])
            for at in range(first, first + 16 * count, 16)
        ]
    except (struct.error, IndexError):
        return None
    taken = [(column, index) for column, index in plan if index < count and spans[index][1] >= WHOLE_MIN]
    if not taken:
        return None
    chosen = {index for _, index in taken}
    if not _apart(spans, chosen, body):
        return None
    patched = bytearray(meta)
    # a taken value leaves its last (length % 8) bytes' room in the hollow body, so every
    # other buffer moves up by a multiple of 8 and keeps its alignment
    shifts = sorted((spans[index][0], spans[index][1] & ~7) for index in chosen)
    for k, (off, _) in enumerate(spans):
        _I64.pack_into(patched, first + 16 * k, off - sum(size for at, size in shifts if at < off))
        if k in chosen:
            _I64.pack_into(patched, first + 16 * k + 8, 0)
    _I64.pack_into(patched, body_pos, body - sum(size for _, size in shifts))
    reads = sorted((spans[index][0], spans[index][1], column) for column, index in taken)
    return bytes(patched), [(column, off, length) for off, length, column in reads]


def _apart(spans: list[tuple[int, int]], chosen: set[int], body: int) -> bool:
    """Whether each chosen buffer lies inside the body and overlaps no other (non-empty) buffer."""
    for index in chosen:
        off, length = spans[index]
        if off < 0 or off + length > body:
            return False
        for k, (o, n) in enumerate(spans):
            if k != index and n and o < off + length and off < o + n:
                return False
    return True


def hollow_reads(body: int, takes: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """The reads that take a hollow body apart, in order: (column, length); column -1 for the bytes between values."""
    reads: list[tuple[int, int]] = []
    pos = 0
    for column, offset, length in takes:
        if offset > pos:
            reads.append((-1, offset - pos))
        reads.append((column, length))
        pos = offset + length
    if body > pos:
        reads.append((-1, body - pos))
    return reads


def hollow_message(head: bytes, meta: bytes, pieces: list[tuple[int, bytes]]) -> Hollow:
    """The hollow message of *head* (framing), *meta* (from ``hollow_layout``) and the pieces of ``hollow_reads``."""
    parts = [head, meta]
    values: dict[int, bytes] = {}
    for column, data in pieces:
        if column < 0:
            parts.append(data)
        else:
            values[column] = data
            parts.append(bytes(len(data) & 7))  # the room the value's last bytes keep in the hollow body
    message = Hollow(b"".join(parts))
    message.values = values
    return message


def hollow_for(
    schema_message: bytes | bytearray | memoryview, meta: bytes, body: int
) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """``hollow_layout`` of the message whose flatbuffer is *meta*, in a stream opened by *schema_message*.

    What every reader asks before a body: None (read it whole) unless the body is big enough.
    """
    if body < WHOLE_MIN:
        return None
    plan = plan_of(schema_message)
    return hollow_layout(meta, 0, plan, body) if plan else None


def plan_of(schema_message: bytes | bytearray | memoryview) -> Plan:
    """The plan of a stream starting with *schema_message* (none for a bad or dictionary schema)."""
    try:
        schema, dictionaries = schema_info(bytes(schema_message))
    except (pa.ArrowException, OSError, ValueError):
        return ()  # the stream's decoding reports it
    return () if dictionaries else plan_for(schema)


class Hollow(bytes):
    """A record-batch message whose big binary values were read into their own ``bytes`` objects.

    Its bytes are the message with those buffers emptied (valid IPC, but the columns point past
    their data); ``values`` maps each such column to its value. Only ``framing.decode_messages``
    decodes it (``batch``); its metadata reads like any message's.
    """

    values: dict[int, bytes]

    def batch(self, schema: pa.Schema) -> pa.RecordBatch:
        """The record batch, each taken column rebuilt around its ``bytes`` object (no copy)."""
        hollow = pa.ipc.read_record_batch(pa.py_buffer(self), schema)
        columns = hollow.columns
        for i, value in self.values.items():
            column = columns[i]
            validity, offsets = column.buffers()[:2]
            columns[i] = pa.Array.from_buffers(
                column.type, len(column), [validity, offsets, wrap(value)], column.null_count, column.offset
            )
        return pa.RecordBatch.from_arrays(columns, schema=schema)


# address of a wrapped value's data -> the memoryview Arrow holds it by (weakly: Arrow owns it)
_WRAPPED: dict[int, weakref.ref[memoryview]] = {}


def wrap(value: bytes) -> pa.Buffer:
    """An Arrow buffer over *value* without a copy, from which ``first_value`` can give *value* back."""
    view = memoryview(value)
    buffer = pa.py_buffer(view)
    address = buffer.address

    def forget(ref: weakref.ref[memoryview], address: int = address) -> None:
        if _WRAPPED.get(address) is ref:
            del _WRAPPED[address]

    _WRAPPED[address] = weakref.ref(view, forget)
    return buffer


def _wrapped(column: pa.Array) -> bytes | None:
    offsets = _BINARY.get(column.type)
    if offsets is None or len(column) != 1 or column.offset or column.null_count:
        return None
    buffers = column.buffers()
    data = buffers[2]
    ref = _WRAPPED.get(data.address) if data is not None else None
    view = ref() if ref is not None else None
    if view is None:
        return None
    value = view.obj
    if type(value) is not bytes or len(value) != data.size or offsets.unpack_from(buffers[1]) != (0, len(value)):
        return None
    return value


def first_value(column: pa.Array) -> Any:
    """The first value of *column* as Python: a value read hollow is the very ``bytes`` object read."""
    if _WRAPPED:
        value = _wrapped(column)
        if value is not None:
            return value
    return column.to_pylist()[0]  # the list, not a Scalar: about half the cost of ``column[0].as_py()``
