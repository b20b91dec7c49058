"""Arrow IPC message framing on a byte source, checked before anything is allocated.

A pipe carries back-to-back IPC streams with no outer framing, so the reader frames each
encapsulated message itself: continuation marker, metadata length, flatbuffer metadata and the
body length read from it. Absurd lengths are rejected at once (a wrong length would otherwise
block forever waiting for bytes that never come) and whole streams are handed to pyarrow as one
in-memory buffer, which is also the fastest way to decode them.

Only the standard library and pyarrow; the source is any object with ``read(n) -> bytes``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

import pyarrow as pa

from ..errors import IPCError, TransportError
from .ipc import TICK, TICK_MESSAGE, open_reader, schema_info, translated_errors

__all__ = ["MAX_METADATA_BYTES", "BatchReader", "FrameReader", "MessageFeed", "custom_metadata"]

MAX_METADATA_BYTES: Final = 64 << 20  # flatbuffer metadata; real messages need a few KiB
MAX_BODY_BYTES: Final = 1 << 40
_CONTINUATION: Final = b"\xff\xff\xff\xff"
_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I64 = struct.Struct("<q").unpack_from


def _field(buf: Any, table: int, index: int) -> int:
    """Absolute position of field *index* of the flatbuffer table at *table* (0 when absent)."""
    vtable = table - _I32(buf, table)[0]
    slot = 4 + 2 * index
    if slot + 2 > _U16(buf, vtable)[0]:
        return 0
    offset = _U16(buf, vtable + slot)[0]
    return table + offset if offset else 0


def message_layout(meta: Any, start: int = 0) -> tuple[int, bool]:
    """The body length of the flatbuffer ``Message`` at *start* of *meta*, and whether it has custom metadata."""
    try:
        table = start + _U32(meta, start)[0]
        vtable = table - _I32(meta, table)[0]
        vtable_size = _U16(meta, vtable)[0]
        # Message fields: 3 bodyLength (int64), 4 custom_metadata ([KeyValue])
        offset = _U16(meta, vtable + 10)[0] if vtable_size >= 12 else 0
        has_metadata = vtable_size >= 14 and _U16(meta, vtable + 12)[0] != 0
        length = int(_I64(meta, table + offset)[0]) if offset else 0
    except struct.error:
        raise IPCError("malformed Arrow IPC message metadata") from None
    if length < 0 or length > MAX_BODY_BYTES:
        raise IPCError(f"Arrow IPC message declares an impossible body length ({length})")
    return length, has_metadata


def body_length(meta: Any, start: int = 0) -> int:
    """The ``bodyLength`` field of the flatbuffer ``Message`` table at *start* of *meta* (0 when absent)."""
    return message_layout(meta, start)[0]


def _string(buf: Any, position: int) -> bytes:
    start = position + _U32(buf, position)[0]
    size = _U32(buf, start)[0]
    data = bytes(buf[start + 4 : start + 4 + size])
    if len(data) != size:
        raise struct.error("string runs past the metadata")
    return data


def custom_metadata(message: bytes | bytearray) -> dict[bytes, bytes] | None:
    """The ``custom_metadata`` of one encapsulated message as read by ``FrameReader`` (None when absent)."""
    start = 8 if message[:4] == _CONTINUATION else 4
    meta = memoryview(message)[start:]
    try:
        position = _field(meta, _U32(meta, 0)[0], 4)  # Message.custom_metadata: [KeyValue]
        if not position:
            return None
        vector = position + _U32(meta, position)[0]
        result: dict[bytes, bytes] = {}
        for i in range(_U32(meta, vector)[0]):
            element = vector + 4 + 4 * i
            pair = element + _U32(meta, element)[0]
            key, value = _field(meta, pair, 0), _field(meta, pair, 1)
            result[_string(meta, key) if key else b""] = _string(meta, value) if value else b""
    except (struct.error, IndexError):
        raise IPCError("malformed Arrow IPC message metadata") from None
    return result


class FrameReader:
    """Reads whole IPC messages and streams from a blocking byte source."""

    __slots__ = ("_peek", "_read", "_readinto", "has_metadata")

    def __init__(
        self,
        read: Callable[[int], bytes],
        readinto: Callable[[Any], int] | None = None,
        peek: Callable[[int], bytes] | None = None,
    ) -> None:
        self._read = read
        self._readinto = readinto
        self._peek = peek
        self.has_metadata = False  # whether the last message read carries custom metadata

    def _exact(self, n: int, what: str) -> bytes:
        data = self._read(n)
        if len(data) == n:
            return data
        parts = [data]
        got = len(data)
        while got < n:
            more = self._read(n - got)
            if not more:
                raise TransportError(f"the peer closed the connection in the middle of {what}")
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def _fill(self, view: memoryview, what: str) -> None:
        """Fill *view* completely from the source (one copy, straight into the message buffer)."""
        if self._readinto is None:
            view[:] = self._exact(len(view), what)
            return
        while view:
            n = self._readinto(view)
            if not n:
                raise TransportError(f"the peer closed the connection in the middle of {what}")
            view = view[n:]

    def read_message(self, first: bytes = b"") -> tuple[bytes | bytearray, bool]:
        """One encapsulated message, and whether it was the end-of-stream marker."""
        if self._peek is not None and not first:
            # fast path: a message already whole in the source's buffer is taken with one read
            # (peek returns what is buffered, or blocks for the first bytes when nothing is)
            data = self._peek(8)
            if len(data) >= 16 and data[:4] == _CONTINUATION:
                length = _I32(data, 4)[0]
                if 0 < length <= MAX_METADATA_BYTES and len(data) >= 8 + length:
                    body, self.has_metadata = message_layout(data, 8)
                    total = 8 + length + body
                    if len(data) >= total:
                        return self._read(total), False
        return self._read_message(first)

    def _read_message(self, first: bytes) -> tuple[bytes | bytearray, bool]:
        prefix = first + self._exact(4 - len(first), "a message") if len(first) < 4 else first
        if prefix == _CONTINUATION:
            length_bytes = self._exact(4, "a message header")
            length = _I32(length_bytes, 0)[0]
            head = prefix + length_bytes
        else:  # pre-1.0 format: the length comes first
            length = _I32(prefix, 0)[0]
            head = prefix
        if length == 0:
            self.has_metadata = False
            return head, True
        if length < 0 or length > MAX_METADATA_BYTES:
            raise IPCError(f"not an Arrow IPC stream: message header declares {length} bytes of metadata")
        meta = self._exact(length, "message metadata")
        body, self.has_metadata = message_layout(meta)
        if not body:
            return head + meta, False
        start = len(head) + len(meta)
        message = bytearray(start + body)
        message[: len(head)] = head
        message[len(head) : start] = meta
        self._fill(memoryview(message)[start:], "a message body")
        return message, False

    def read_stream(self) -> bytes | bytearray | None:
        """One complete IPC stream (through its EOS marker); None at a clean end of input."""
        if self._peek is not None:
            if not self._peek(1):
                return None
            first = b""
        else:
            first = self._read(4)
            if not first:
                return None
            if len(first) < 4:
                first += self._exact(4 - len(first), "a message")
        parts = []
        message, end = self.read_message(first)
        parts.append(message)
        while not end:
            message, end = self.read_message()
            parts.append(message)
        return b"".join(parts)


class MessageFeed:
    """A read-only file object serving one IPC stream message by message, as pyarrow asks for bytes.

    Lets a pyarrow stream reader decode a long-lived stream (a stream call's input or output)
    incrementally while the framing checks above still apply to every message.
    """

    __slots__ = ("_buf", "_done", "_frames", "_pos", "closed")

    def __init__(self, frames: FrameReader) -> None:
        self._frames = frames
        self._buf: memoryview = memoryview(b"")
        self._pos = 0
        self._done = False
        self.closed = False

    def read(self, n: int = -1) -> bytes | memoryview:
        if n < 0:
            raise ValueError("MessageFeed.read needs a size")
        available = len(self._buf) - self._pos
        if available == 0 and not self._done:
            message, self._done = self._frames.read_message()
            self._buf, self._pos, available = memoryview(message), 0, len(message)
        if available >= n:  # the common case: a slice of one message, no copy
            chunk = self._buf[self._pos : self._pos + n]
            self._pos += n
            return chunk
        parts = [bytes(self._buf[self._pos :])]
        got = available
        while got < n and not self._done:
            message, self._done = self._frames.read_message()
            parts.append(bytes(message))
            got += len(message)
        joined = b"".join(parts)
        self._buf, self._pos = memoryview(joined), min(n, len(joined))
        return self._buf[:n]

    def idle(self) -> bool:
        """True when no bytes of a read message are waiting (the next message is not read yet)."""
        return self._pos >= len(self._buf) and not self._done

    def push(self, message: bytes | bytearray, end: bool) -> None:
        """Hand a message read directly from ``frames`` back to the pyarrow reader."""
        self._buf, self._pos, self._done = memoryview(message), 0, end

    @property
    def frames(self) -> FrameReader:
        """The message source."""
        return self._frames

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def open(self) -> Any:
        """A pyarrow stream reader over this feed."""
        return open_reader(self)


class BatchReader:
    """Reads one IPC stream batch by batch from a ``FrameReader``.

    Each message is framed here and, for a schema without dictionaries, decoded on its own
    (``pa.ipc.read_record_batch`` plus our own read of its custom metadata), so no Python-level
    file object sits under a pyarrow reader. Streams with dictionaries go through pyarrow's
    stream reader, fed message by message. A plain producer tick, a constant message, is
    recognised by its bytes and not decoded.
    """

    __slots__ = ("_feed", "_frames", "_reader", "_ticks", "done", "schema")

    def __init__(self, frames: FrameReader) -> None:
        self._frames = frames
        self.done = False
        with translated_errors():
            message, end = frames.read_message()
        if end:
            raise IPCError("an Arrow IPC stream ended before its schema")
        schema, dictionaries = _decode(_schema_info, message)
        self.schema: pa.Schema = schema
        self._ticks = len(schema) == 0
        self._feed: MessageFeed | None = None
        self._reader: Any = None
        if dictionaries:
            self._feed = MessageFeed(frames)
            self._feed.push(message, False)
            with translated_errors():
                self._reader = self._feed.open()

    def next(self) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None] | None:
        """The next batch and its metadata, or None at the end of the stream."""
        if self.done:
            return None
        if self._reader is not None:
            return self._next_via_pyarrow()
        try:
            message, end = self._frames.read_message()
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot read from the peer: {exc}") from exc
        if end:
            self.done = True
            return None
        if self._ticks and message == TICK_MESSAGE:
            return TICK, None
        batch = _decode(_read_batch, message, self.schema)
        return batch, custom_metadata(message) if self._frames.has_metadata else None

    def _next_via_pyarrow(self) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None] | None:
        with translated_errors():
            try:
                batch, md = self._reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                self.done = True
                return None
        return batch, (dict(md) if md is not None else None)

    def drain(self) -> None:
        """Read and discard the rest of the stream."""
        while self.next() is not None:
            pass


def _schema_info(buffer: pa.Buffer) -> tuple[pa.Schema, bool]:
    return schema_info(buffer.to_pybytes())


def _read_batch(buffer: pa.Buffer, schema: pa.Schema) -> pa.RecordBatch:
    return pa.ipc.read_record_batch(buffer, schema)


def _decode(fn: Callable[..., Any], message: bytes | bytearray, *args: Any) -> Any:
    """Decode one framed message; any failure is the peer's malformed IPC."""
    try:
        return fn(pa.py_buffer(message), *args)
    except (pa.ArrowException, OSError, ValueError) as exc:  # pyarrow reports some as OSError
        raise IPCError(f"malformed Arrow IPC from the peer: {exc}") from exc
