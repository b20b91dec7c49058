"""The long-stream driver shape: one IPC stream per direction per call, over a ByteStream.

Pipe, subprocess and (later) shared memory carry back-to-back IPC streams on one byte stream
each way. This module moves those bytes for both ends and hands batches to the state machines:
the server's (``Dispatcher`` + ``StreamCall``) and the client's (``invoke.ClientStream``). It
decides nothing about a call; the rules that only a pipe needs (draining a refused stream call's
input stream, reading the input to its end after the output ended) live here.

It opens nothing: the ByteStream is handed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from ..errors import TransportError
from . import keys
from .calls import StreamCall
from .codec import TICK_MESSAGE
from .dispatch import Dispatcher, Reply
from .framing import BatchReader, FrameReader, decode_messages
from .ipc import EMPTY_STREAM, TICK, Items, StreamWriter, encode_stream, translated_errors
from .offload import Offload

__all__ = ["TICKS_AHEAD", "ByteStream", "LongStreamCall", "LongStreamDriver", "frame_reader", "serve_connection"]

TICKS_AHEAD = 8  # ticks in flight while a client iterates a producer that accepted them

Messages = list[tuple[bytes | bytearray | memoryview, bool]]


class ByteStream(Protocol):
    """A two-way byte stream: what every long-stream transport provides.

    ``readinto(buffer)`` and ``peek(n)`` are used when present (fewer copies; one read for a
    message already buffered).
    """

    def read(self, n: int) -> bytes:
        """Up to *n* bytes; fewer only at the end of input (b"" then)."""

    def write(self, data: bytes | bytearray | memoryview | pa.Buffer | list[Any]) -> None:
        """Send all of *data* (a list is gathered in order); ``TransportError`` when the peer is gone."""

    def close(self) -> None:
        """Release the stream (idempotent)."""


def frame_reader(stream: ByteStream) -> FrameReader:
    """A FrameReader over *stream*, using its ``readinto`` and ``peek`` when it has them."""
    return FrameReader(
        stream.read,
        getattr(stream, "readinto", None),
        getattr(stream, "peek", None),
        wait=getattr(stream, "spin", None),
    )


def _read_messages(frames: FrameReader, wholes: bool = False) -> Messages | None:
    with translated_errors():
        return frames.read_messages(wholes)


# -- server -----------------------------------------------------------------------------------


def serve_connection(
    dispatcher: Dispatcher,
    stream: ByteStream,
    offload_for: Callable[[Messages], Offload | None] | None = None,
) -> None:
    """Serve requests from *stream* until its input ends; raises what stops it (IPCError, TransportError).

    The stream's own ``offload`` (a shared-memory transport's) serves every request; otherwise
    *offload_for* may give one per request (a segment the request advertises).
    """
    frames = frame_reader(stream)
    write = stream.write
    offload = getattr(stream, "offload", None)  # a stream with a side channel (shared memory) brings its own
    while True:
        messages = _read_messages(frames, wholes=True)  # a big bytes argument: one copy, handed to the method
        if messages is None:
            return
        out = dispatcher.handle_messages(
            messages, offload=offload if offload is not None or offload_for is None else offload_for(messages)
        )
        del messages  # a big request's buffer is not kept while the next one is read
        if isinstance(out, Reply):
            write(out.chunks())
            drain = out.drain_input
            del out  # nor a big reply's
            if drain:  # a refused stream call: its client still sends one input stream
                _read_messages(frames)
            continue
        _run_call(out, frames, write)


def _run_call(call: StreamCall, frames: FrameReader, write: Callable[[Any], None]) -> None:
    """Drive one stream call in lock-step: one input batch in, that step's output out."""
    try:
        if call.header is not None:
            write(encode_stream(*call.header))
        reader = BatchReader(frames)
        writer = StreamWriter(_accepting(call.output_schema) if call.tick_ahead else call.output_schema)
        while True:
            incoming = reader.next()
            turn = call.end() if incoming is None else call.step(*incoming)
            for batch, md in turn.items:
                writer.write(batch, md)
            if turn.done:
                writer.end()
            write(writer.take())
            if turn.done:
                reader.drain()
                return
    except BaseException as exc:
        call.abort(exc)
        raise
    finally:
        call.close()


def _accepting(schema: pa.Schema) -> pa.Schema:
    """A producer's output schema telling a client that offered ticks ahead that it may send them.

    Nothing else changes on this side: a tick is answered when it is read, and after the output
    ended the rest of the input (ticks sent ahead, then its end) is read and dropped.
    """
    return schema.with_metadata({**(schema.metadata or {}), keys.TICK_AHEAD: b"1"})


# -- client -----------------------------------------------------------------------------------


class LongStreamDriver:
    """The client end of a long-stream connection: unary calls and stream calls over one ByteStream."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.frames = frame_reader(stream)

    def unary(self, request: bytes | list[Any], what: str, route: tuple[str, str] | None = None) -> Messages:
        """Send one request stream; return the reply stream's messages (*route* is for HTTP: unused)."""
        self.stream.write(request)
        messages = _read_messages(self.frames, wholes=True)  # a big bytes result: one copy, handed to the caller
        if messages is None:
            raise TransportError(f"{what}: the server closed the connection")
        return messages

    def open_stream(self, request: bytes | list[Any], has_header: bool, what: str) -> LongStreamCall:
        """Send a stream call's request (and read its header stream, when the method declares one)."""
        return LongStreamCall(self, request, has_header, what)

    def close(self) -> None:
        """Close the byte stream."""
        self.stream.close()


class LongStreamCall:
    """One stream call on a long-stream connection: the input stream opens with the first batch."""

    __slots__ = ("_ahead", "_driver", "_reader", "_what", "_write", "_writer", "header_items")

    def __init__(self, driver: LongStreamDriver, request: bytes | list[Any], has_header: bool, what: str) -> None:
        self._driver = driver
        self._write = driver.stream.write
        self._what = what
        self._writer: StreamWriter | None = None
        self._reader: BatchReader | None = None
        self._ahead = False  # whether the window of ticks ahead was sent
        driver.stream.write(request)
        self.header_items: Items = []
        if has_header:
            messages = _read_messages(driver.frames)
            if messages is None:
                raise TransportError(f"{what}: the server closed the connection")
            self.header_items = decode_messages(messages)[1]

    def init_items(self) -> Items:
        """Init logs arrive with the first output on this shape: nothing to read at start."""
        return []

    def send(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> None:
        """Append one batch to the input stream (opening it with the first)."""
        writer = self._writer
        if writer is None:
            writer = self._writer = StreamWriter(batch.schema)
        elif metadata is None and batch is TICK and not len(writer.schema):
            self._write(TICK_MESSAGE)  # ticks after the first: a constant message
            return
        writer.write(batch, metadata)
        self._write(writer.take())

    def turn(
        self,
        batch: pa.RecordBatch,
        metadata: dict[bytes, bytes] | None,
        stop: Callable[[pa.RecordBatch, dict[bytes, bytes] | None], bool],
    ) -> tuple[Items, bool]:
        """Send one input; read the output up to the first item *stop* accepts, or the output's end."""
        writer = self._writer
        if writer is not None and metadata is None and batch is TICK and not len(writer.schema):
            self._write(TICK_MESSAGE)  # ticks after the first: a constant message
        else:
            self.send(batch, metadata)
        return self._output(stop)

    # -- ticks ahead (a producer of ours accepted them on its output schema: keys.TICK_AHEAD) --------

    def ticks_ahead(self) -> bool:
        """Whether the output stream accepted ticks sent before their output was read."""
        reader = self._reader
        return reader is not None and reader.tick_ahead

    def turn_ahead(self, stop: Callable[[pa.RecordBatch, dict[bytes, bytes] | None], bool]) -> tuple[Items, bool]:
        """The next producer turn with TICKS_AHEAD plain ticks in flight (call after ``ticks_ahead()``).

        The first call sends the window in one write; each call reads one turn and, unless the
        output ended, sends the tick that keeps the window full. The server answers ticks as it
        reads them, and after its output ended reads the rest of the input (those ticks, then
        its end) and drops it.
        """
        if not self._ahead:
            self._ahead = True
            self._write(TICK_MESSAGE * TICKS_AHEAD)
        items, ended = self._output(stop)
        if not ended:
            self._write(TICK_MESSAGE)
        return items, ended

    def _output(self, stop: Callable[[pa.RecordBatch, dict[bytes, bytes] | None], bool]) -> tuple[Items, bool]:
        """Read one turn's output: up to the first item *stop* accepts, or the output's end."""
        reader = self._reader
        if reader is not None:  # the usual turn: one plain data batch
            incoming = reader.next()
            if incoming is not None and incoming[1] is None:
                return [incoming], False
            if incoming is None:
                return [], True
            if stop(*incoming):
                return [incoming], False
            items, eos = self.receive(stop)
            items.insert(0, incoming)
            return items, eos
        return self.receive(stop)

    def receive(self, stop: Callable[[pa.RecordBatch, dict[bytes, bytes] | None], bool]) -> tuple[Items, bool]:
        """Output items up to and including the first that *stop* accepts; True when the output ended."""
        reader = self._reader
        if reader is None:
            with translated_errors():
                reader = self._reader = BatchReader(self._driver.frames)
        items: Items = []
        while True:
            incoming = reader.next()
            if incoming is None:
                return items, True
            items.append(incoming)
            if incoming[1] is None or stop(*incoming):
                return items, False

    def close(self, output_ended: bool) -> Items:
        """End the input stream; read what is left of the output (logs) when it has not ended."""
        writer = self._writer
        if writer is None:
            self._write(EMPTY_STREAM)
        else:
            writer.end()
            self._write(writer.take())
        if output_ended:
            return []
        rest: Items = []
        while True:  # after ticks sent ahead, their batches come first: dropped, their logs kept
            items, ended = self.receive(_never)
            rest.extend(item for item in items if item[1] is not None)
            if ended:
                return rest


def _never(batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> bool:
    return False
