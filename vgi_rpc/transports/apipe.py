"""The long-stream driver shape on asyncio streams, and ``aserve_pipe`` (``aconnect``: ``asubprocess.py``).

The same bytes as the sync ``LongStreamDriver`` (``_core/longstream.py``): back-to-back IPC
streams each way on one lock-step connection. Messages are framed with ``await`` (the body
length comes from the core's ``layout_of``) and then decoded by the core's own readers, fed
one whole message at a time, so no decoding is written twice. Calls on one connection are
serialised by ``AsyncRpcConnection``; a pool of connections gives parallelism.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, overload

import pyarrow as pa

from .._core.flatbuf import DICTIONARY_BATCH, header_type
from .._core.framing import (
    MAX_METADATA_BYTES,
    BatchReader,
    FrameReader,
    bad_metadata_length,
    decode_messages,
    layout_of,
)
from .._core.invoke import Request
from .._core.ipc import EMPTY_STREAM, TICK, TICK_MESSAGE, Items, StreamWriter, translated_errors
from .._core.longstream import TICKS_AHEAD
from .._core.wholes import hollow_for, hollow_message, hollow_reads
from ..aclient import AsyncRpcConnection
from ..client import ProtocolClass, Stop
from ..errors import ConnectionClosedError, TransportError
from ..log import Message
from .pipe import PipeTransport, _grow_pipe

__all__ = ["AsyncLongStreamDriver", "aserve_pipe", "read_message", "read_messages"]

P = TypeVar("P")
Messages = list[tuple[bytes | bytearray | memoryview, bool]]
_log = logging.getLogger("vgi_rpc.wire.transport")
_CONTINUATION = b"\xff\xff\xff\xff"
LIMIT = 1 << 20  # StreamReader buffer
_STDERR_TAIL = 20


async def _exact(reader: asyncio.StreamReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial and what == "boundary":
            raise ConnectionClosedError("the peer closed the connection") from None
        raise TransportError(f"the peer closed the connection in the middle of {what}") from None
    except (OSError, ValueError) as exc:
        raise TransportError(f"cannot read from the peer: {exc}") from exc


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bool, bool]:
    """One encapsulated message as it came: its bytes, whether it has custom metadata, whether it is EOS."""
    data, has_metadata, end, _ = await read_message_kind(reader)
    return data, has_metadata, end


async def read_message_kind(
    reader: asyncio.StreamReader, wholes: bytes | None = None
) -> tuple[bytes, bool, bool, bool]:
    """As :func:`read_message`, and whether the message is a dictionary batch.

    *wholes*: the schema message of the stream being read, when a one-row batch's big binary
    values are to be read into their own ``bytes`` objects (a ``wholes.Hollow`` message).
    """
    head = await _exact(reader, 4, "boundary")
    if head == _CONTINUATION:
        head += await _exact(reader, 4, "a message header")
        length = struct.unpack_from("<i", head, 4)[0]
    else:  # pre-1.0 format: the length comes first
        length = struct.unpack_from("<i", head, 0)[0]
    if length == 0:
        return head, False, True, False
    if length < 0 or length > MAX_METADATA_BYTES:
        raise bad_metadata_length(head, length)
    meta = await _exact(reader, length, "message metadata")
    body, has_metadata = layout_of(meta)
    layout = hollow_for(wholes, meta, body) if wholes is not None else None
    if layout is not None:
        patched, takes = layout
        pieces = [(column, await _exact(reader, n, "a message body")) for column, n in hollow_reads(body, takes)]
        return hollow_message(head, patched, pieces), has_metadata, False, False
    data = head + meta
    if body:
        data += await _exact(reader, body, "a message body")
    return data, has_metadata, False, header_type(meta) == DICTIONARY_BATCH


async def read_messages(reader: asyncio.StreamReader, what: str, wholes: bool = False) -> Messages:
    """One complete IPC stream as its messages (the EOS marker consumed); *wholes* as ``FrameReader.read_messages``."""
    try:
        message, has_md, end = await read_message(reader)
    except ConnectionClosedError:
        raise TransportError(f"{what}: the server closed the connection") from None
    schema = message if wholes and not end else None
    messages: Messages = []
    while not end:
        messages.append((message, has_md))
        message, has_md, end, _ = await read_message_kind(reader, schema)
    return messages


class _Fed:
    """A byte source holding the messages fetched with ``await``, for the core's sync readers."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def push(self, data: bytes) -> None:
        self._buf += data

    def read(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


class AsyncLongStreamDriver:
    """Implements ``aclient.AsyncDriver`` on an asyncio reader and writer (a pipe, a worker's stdio)."""

    serial = True
    turn_per_request = False

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_abort: Callable[[], None] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._on_abort = on_abort

    async def send(self, data: bytes | bytearray | pa.Buffer | list[Any]) -> None:
        """Write *data* (a list of chunks is gathered) and wait until the pipe takes it."""
        try:
            if isinstance(data, list):
                self.writer.writelines([memoryview(c) for c in data])
            else:
                self.writer.write(memoryview(data))
            await self.writer.drain()
        except (OSError, RuntimeError) as exc:
            raise TransportError(f"cannot write to the peer: {exc}") from exc

    async def unary(self, request: Request, what: str, route: tuple[str, str] | None = None) -> Messages:
        """Send one request stream; the reply stream's messages (*route* is for HTTP: unused)."""
        await self.send(request)
        return await read_messages(self.reader, what, wholes=True)  # a big bytes result: into its own bytes

    async def open_stream(self, request: Request, has_header: bool, what: str) -> AsyncLongStreamCall:
        """Send a stream call's request (and read its header stream, when the method declares one)."""
        await self.send(request)
        call = AsyncLongStreamCall(self, what)
        if has_header:
            messages = await read_messages(self.reader, what)
            with translated_errors():
                call.header_items = decode_messages(messages)[1]
        return call

    def abort(self) -> None:
        """Break the connection at once (the worker is killed)."""
        self.writer.close()
        if self._on_abort is not None:
            self._on_abort()

    async def aclose(self) -> None:
        """Close the write end (a worker's cue to exit)."""
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError, RuntimeError):
            await self.writer.wait_closed()


class AsyncLongStreamCall:
    """One stream call: the input stream opens with the first batch; output read message by message."""

    __slots__ = ("_ahead", "_driver", "_fed", "_reader", "_what", "_writer", "header_items")

    def __init__(self, driver: AsyncLongStreamDriver, what: str) -> None:
        self._driver = driver
        self._what = what
        self._writer: StreamWriter | None = None
        self._reader: BatchReader | None = None
        self._fed = _Fed()
        self._ahead = False  # whether the window of ticks ahead was sent
        self.header_items: Items = []

    def init_items(self) -> Items:
        """Init logs arrive with the first output on this shape."""
        return []

    async def _fetch(self) -> None:
        """Fetch the next message for the core's reader: a record batch with the dictionaries before it."""
        dictionary = True
        while dictionary:
            message, _, _, dictionary = await read_message_kind(self._driver.reader)
            self._fed.push(message)

    async def _next(self) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None] | None:
        if self._reader is None:
            await self._fetch()  # the schema
            with translated_errors():
                self._reader = BatchReader(FrameReader(self._fed.read))
        await self._fetch()
        with translated_errors():
            return self._reader.next()

    async def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """Send one input; read the output up to the first item *stop* accepts, or the output's end."""
        writer = self._writer
        if writer is not None and metadata is None and batch is TICK and not len(writer.schema):
            await self._driver.send(TICK_MESSAGE)  # ticks after the first: a constant message
        else:
            if writer is None:
                writer = self._writer = StreamWriter(batch.schema)
            writer.write(batch, metadata)
            await self._driver.send(writer.take())
        return await self.receive(stop)

    def ticks_ahead(self) -> bool:
        """Whether the output stream accepted ticks sent before their output was read."""
        reader = self._reader
        return reader is not None and reader.tick_ahead

    async def turn_ahead(self, stop: Stop) -> tuple[Items, bool]:
        """The next producer turn with TICKS_AHEAD plain ticks in flight (as ``LongStreamCall.turn_ahead``)."""
        if not self._ahead:
            self._ahead = True
            await self._driver.send(TICK_MESSAGE * TICKS_AHEAD)
        items, ended = await self.receive(stop)
        if not ended:
            await self._driver.send(TICK_MESSAGE)
        return items, ended

    async def receive(self, stop: Stop) -> tuple[Items, bool]:
        """Output items up to and including the first that *stop* accepts; True when the output ended."""
        items: Items = []
        while True:
            incoming = await self._next()
            if incoming is None:
                return items, True
            items.append(incoming)
            if incoming[1] is None or stop(*incoming):
                return items, False

    async def close(self, output_ended: bool) -> Items:
        """End the input stream; read what is left of the output (logs) when it has not ended."""
        writer = self._writer
        if writer is None:
            await self._driver.send(EMPTY_STREAM)
        else:
            writer.end()
            await self._driver.send(writer.take())
        if output_ended:
            return []
        rest: Items = []
        while True:  # after ticks sent ahead, their batches come first: dropped, their logs kept
            items, ended = await self.receive(_never)
            rest.extend(item for item in items if item[1] is not None)
            if ended:
                return rest


def _never(batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> bool:
    return False


# -- in-process pipe ------------------------------------------------------------------------------


async def open_pipe_streams(
    read_fd: int, write_fd: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.BaseTransport]:
    """An asyncio reader and writer over two pipe descriptors, and the read end's transport (to close)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LIMIT)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
    )
    transport, proto = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", 0))
    return reader, asyncio.StreamWriter(transport, proto, None, loop), read_transport


@overload
def aserve_pipe(
    protocol: ProtocolClass[Any],
    implementation: object,
    *,
    twin: ProtocolClass[P],
    on_log: Callable[[Message], None] | None = ...,
    ipc_validation: Any = ...,
    timeout: float | None = ...,
) -> contextlib.AbstractAsyncContextManager[P]: ...
@overload
def aserve_pipe(
    protocol: ProtocolClass[Any],
    implementation: object,
    *,
    twin: None = ...,
    on_log: Callable[[Message], None] | None = ...,
    ipc_validation: Any = ...,
    timeout: float | None = ...,
) -> contextlib.AbstractAsyncContextManager[Any]: ...
def aserve_pipe(
    protocol: ProtocolClass[Any],
    implementation: object,
    *,
    twin: ProtocolClass[Any] | None = None,
    on_log: Callable[[Message], None] | None = None,
    ipc_validation: Any = None,
    timeout: float | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Serve *implementation* on a thread over an in-process pipe and yield an async proxy.

    As :func:`vgi_rpc.serve_pipe`, with coroutine methods; *twin* as in :func:`aconnect`.
    """
    return _aserve_pipe(protocol, implementation, twin, on_log, ipc_validation, timeout)


@contextlib.asynccontextmanager
async def _aserve_pipe(
    protocol: ProtocolClass[Any],
    implementation: object,
    twin: ProtocolClass[Any] | None,
    on_log: Callable[[Message], None] | None,
    ipc_validation: Any,
    timeout: float | None,
) -> AsyncIterator[Any]:
    from .._core.ipc import IpcValidation
    from ..server import RpcServer

    level = ipc_validation or IpcValidation.FULL
    server = RpcServer(protocol, implementation, ipc_validation=level)  # type: ignore[arg-type]
    c2s_r, c2s_w = os.pipe()
    s2c_r, s2c_w = os.pipe()
    for fd in (c2s_w, s2c_w):
        _grow_pipe(fd)
    server_side = PipeTransport(os.fdopen(c2s_r, "rb", 0), os.fdopen(s2c_w, "wb", 0))
    reader, writer, read_transport = await open_pipe_streams(s2c_r, c2s_w)
    thread = threading.Thread(target=_serve, args=(server, server_side), name="vgi_rpc-aserve_pipe", daemon=True)
    thread.start()
    driver = AsyncLongStreamDriver(reader, writer, on_abort=server_side.close)
    connection: AsyncRpcConnection[Any] = AsyncRpcConnection(
        protocol, driver, on_log, ipc_validation=level, timeout=timeout, twin=twin
    )
    try:
        yield connection.proxy
    finally:
        await connection.aclose()
        await asyncio.to_thread(thread.join, 10)
        read_transport.close()


def _serve(server: Any, transport: PipeTransport) -> None:
    try:
        server.serve(transport)
    except BaseException:  # logged by serve(); the client sees the pipe close
        pass
    finally:
        transport.close()
