"""AsyncRpcConnection: the asyncio twin of ``RpcConnection``, over the same client state machine.

An async driver moves the bytes with ``await`` (``transports.apipe`` over asyncio streams,
``http.aclient`` over aiohttp or httpx); the requests, the sorting of reply batches and the
stream call lifecycle are ``_core/invoke``'s, exactly as for the sync client.

Invariants:
- A *serial* driver (a pipe: one lock-step byte stream) runs one call at a time: calls wait on
  an ``asyncio.Lock``, and a stream call holds it from its start to its end. A failure, a
  timeout or a cancellation in the middle of its I/O closes the transport (it could be out of
  step) and every later call raises ``TransportError``.
- A turn-per-request driver (HTTP) runs any number of calls at once; a failed, timed-out or
  cancelled request fails that call (or ends that stream) only.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa

from ._core import wirelog
from ._core.codec import RowCodec
from ._core.framing import decode_messages
from ._core.invoke import ClientStream, Phase, Request, RequestEncoder, is_data, read_unary_reply
from ._core.ipc import IpcValidation, Items
from ._core.offload import Offload
from ._core.service import MethodSpec, ServiceSpec, service_spec
from ._core.streams import AnnotatedBatch
from .client import ProtocolClass, Stop, _traced, may_tick_ahead, trace_metadata
from .errors import ProtocolError, RpcTimeoutError, TransportError
from .log import Message
from .twin import check_twin

__all__ = ["AsyncDriver", "AsyncRpcConnection", "AsyncStreamChannel", "AsyncStreamSession"]

P = TypeVar("P")
Messages = list[tuple[bytes | bytearray | memoryview, bool]]


class AsyncStreamChannel(Protocol):
    """One stream call as an async driver carries it (see ``client.StreamChannel``)."""

    header_items: Items

    def init_items(self) -> Items:
        """Items that came with the call's start."""

    async def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """Send one input; that turn's output items and whether the output ended."""

    async def close(self, output_ended: bool) -> Items:
        """End the call's input; what was left of its output."""


class AsyncDriver(Protocol):
    """What an async connection needs from a transport."""

    serial: bool  # one call at a time (a lock-step byte stream)
    turn_per_request: bool

    async def unary(self, request: Request, what: str, route: tuple[str, str] | None = None) -> Messages:
        """Send one request stream; the reply stream's messages (*route*: as ``Driver.unary``'s)."""

    async def open_stream(self, request: Request, has_header: bool, what: str) -> AsyncStreamChannel:
        """Start a stream call."""

    async def aclose(self) -> None:
        """Release the transport."""

    def abort(self) -> None:
        """Break the transport at once (a call failed or was cancelled in the middle of its I/O)."""


class _AsyncProxyBase:
    __slots__ = ("_connection",)

    def __init__(self, connection: AsyncRpcConnection[Any]) -> None:
        self._connection = connection

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self._connection.driver!r}>"


def _make_method(spec: MethodSpec, encoder: RequestEncoder) -> Callable[..., Any]:
    if spec.is_stream:

        def stream_call(self: _AsyncProxyBase, *args: Any, **kwargs: Any) -> AsyncStreamSession:
            return AsyncStreamSession(self._connection, spec, encoder.encode(args, kwargs, trace_metadata()))

        stream_call.__name__ = spec.name
        stream_call.__doc__ = spec.info.doc
        return stream_call

    async def call(self: _AsyncProxyBase, *args: Any, **kwargs: Any) -> Any:
        request = encoder.encode(args, kwargs, trace_metadata())
        return await self._connection.call_request(
            spec, request, encoder.reply_codec, (self._connection.service.name, spec.name)
        )

    call.__name__ = spec.name
    call.__doc__ = spec.info.doc
    return call


_PROXY_CLASSES: dict[type, type[_AsyncProxyBase]] = {}


def _proxy_class(service: ServiceSpec) -> type[_AsyncProxyBase]:
    cls = _PROXY_CLASSES.get(service.protocol)
    if cls is None:
        namespace: dict[str, Any] = {"__slots__": ()}
        for name, m in service.methods.items():
            namespace[name] = _make_method(m, RequestEncoder(service, m))
        cls = type(f"{service.protocol.__name__}AsyncProxy", (_AsyncProxyBase,), namespace)
        _PROXY_CLASSES[service.protocol] = cls
    return cls


class AsyncRpcConnection(Generic[P]):
    """An async client connection; ``async with AsyncRpcConnection(...) as proxy:`` yields the proxy.

    Its methods are coroutines (``await proxy.add(a=1.0, b=2.0)``); a stream method returns an
    :class:`AsyncStreamSession`. *timeout* (seconds, per call or stream turn) raises
    ``RpcTimeoutError``. See the module docstring for what a failure does to the connection.
    """

    def __init__(
        self,
        protocol: ProtocolClass[Any],
        driver: AsyncDriver,
        on_log: Callable[[Message], None] | None = None,
        *,
        ipc_validation: IpcValidation = IpcValidation.FULL,
        offload: Offload | None = None,
        timeout: float | None = None,
        twin: ProtocolClass[P] | None = None,
    ) -> None:
        self.protocol: type = protocol  # type: ignore[assignment]
        self.service = service_spec(self.protocol)
        if twin is not None:
            check_twin(self.service, twin)  # type: ignore[arg-type]
        self.driver = driver
        self.on_log = on_log
        self.ipc_validation = ipc_validation
        self.offload = offload
        self.timeout = timeout
        self._lock = asyncio.Lock() if driver.serial else None
        self._owner: asyncio.Task[Any] | None = None  # the task whose stream holds the lock
        self._stream: AsyncStreamSession | None = None  # that stream
        self._broken: BaseException | None = None
        self.proxy: P = _proxy_class(self.service)(self)  # type: ignore[assignment]

    async def __aenter__(self) -> P:
        return self.proxy

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport; later calls raise ``TransportError``."""
        if self._broken is None:
            self._broken = TransportError("the connection was closed")
        await self.driver.aclose()

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise TransportError(f"the connection is broken: {self._broken!r}") from self._broken

    async def _acquire(self, what: str) -> None:
        """Wait for the connection (serial drivers); a stream of the calling task still open is an error."""
        self._check_usable()
        if self._lock is None:
            return
        if self._owner is not None and self._owner is asyncio.current_task():
            stream = self._stream
            if stream is not None and stream._abandoned:  # left by break out of async for: end it now
                await stream.aclose()
                await self._acquire(what)
                return
            raise ProtocolError(
                f"a stream is still open on this connection in this task: close it before {what}, "
                "or use another connection"
            )
        await self._lock.acquire()
        try:
            self._check_usable()
        except BaseException:
            self._lock.release()
            raise

    def _release(self) -> None:
        if self._lock is not None and self._lock.locked():
            self._owner = None
            self._stream = None
            self._lock.release()

    async def io(self, awaitable: Awaitable[Any]) -> Any:
        """Await a driver operation under the timeout; a failure breaks a serial transport."""
        try:
            if self.timeout is None:
                return await awaitable
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except TimeoutError as exc:
            if isinstance(exc, RpcTimeoutError):  # the HTTP client's own timeout
                self._fail(exc)
                raise
            text = f"no answer within the connection's timeout of {self.timeout} s"
            failure = RpcTimeoutError(text + ("; the connection is closed" if self.driver.serial else ""))
            self._fail(failure)
            raise failure from exc
        except TransportError as exc:
            self._fail(exc)
            detail = getattr(self.driver, "failure_detail", None)
            text = await detail() if detail is not None else ""
            if not text:
                raise
            explained = type(exc)(f"{exc.error_message}; {text}")
            if self._broken is exc:
                self._broken = explained
            raise explained from exc
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        if self.driver.serial:
            if self._broken is None:
                self._broken = exc
            self.driver.abort()

    async def call_request(
        self, spec: MethodSpec, data: Request, codec: RowCodec | None = None, route: tuple[str, str] | None = None
    ) -> Any:
        """Send one complete unary request for *spec*; its decoded result (*route*: as ``RpcConnection``'s)."""
        await self._acquire(f"{spec.name}()")
        try:
            messages = await self.io(self.driver.unary(data, spec.name + "()", route))
        finally:
            self._release()
        if codec is not None:
            row = codec.decode(messages)
            if row is not None:
                if wirelog.on(wirelog.RESPONSE):
                    wirelog.RESPONSE.debug("client <- %s.%s (template): %r", self.service.name, spec.name, row)
                if wirelog.on(wirelog.BATCH):
                    wirelog.BATCH.debug("client <- data batch (template): %d columns", len(row))
                return row[0] if row else None
        _, items = decode_messages(messages)
        return read_unary_reply(spec, items, self.on_log, self.ipc_validation, self.offload)


class AsyncStreamSession:
    """The client side of one stream call, for ``async for``, ``async with`` or ``await``.

    ``async for batch in proxy.produce(...)`` iterates a producer; ``async with
    proxy.transform(...) as session: await session.exchange(batch)`` drives an exchange (and
    ``session = await proxy.transform(...)`` opens one to close with :meth:`aclose`). Leaving
    the block, or :meth:`aclose`, ends the stream cleanly; ``break`` out of ``async for`` ends it
    when the loop's async generator is finalised: the event loop schedules that right after the
    loop is left, and the session's operations take turns, so a call made on the session in the
    meantime either runs first or finds the stream ended.
    """

    def __init__(self, connection: AsyncRpcConnection[Any], method: MethodSpec, request: Request) -> None:
        self.method = method
        self._conn = connection
        self._request = request
        self._state = ClientStream(
            method,
            ipc_validation=connection.ipc_validation,
            on_log=connection.on_log,
            offload=connection.offload,
            turn_per_request=connection.driver.turn_per_request,
        )
        self._channel: AsyncStreamChannel | None = None
        self._done = False
        self._holds = False  # whether this stream holds its connection (serial drivers)
        self._closing = False
        self._loop_ref: weakref.ref[Any] | None = None  # the async for loop's generator, when it opened the stream
        self._ops: asyncio.Lock | None = None  # one operation at a time (see _serial)

    # -- lifecycle ----------------------------------------------------------------------------

    def _serial(self) -> asyncio.Lock:
        """The lock the session's operations take turns on.

        A loop left by ``break`` closes the session from a task the event loop starts later (its
        generator's finaliser); without taking turns, that close and the caller's next call on
        the session would read the same stream at once.
        """
        if self._ops is None:
            self._ops = asyncio.Lock()
        return self._ops

    async def _open(self) -> AsyncStreamSession:
        if self._channel is not None or self._done:
            return self
        conn = self._conn
        await conn._acquire(f"{self.method.name}()")
        self._holds = True
        if conn._lock is not None:
            conn._owner = asyncio.current_task()
            conn._stream = self
        try:
            self._channel = await self._io(
                conn.driver.open_stream(self._request, self.method.header_spec is not None, self._state.what)
            )
            if self.method.header_spec is not None:
                self._state.take_header(self._channel.header_items)
            self._state.take_init(self._channel.init_items())
        except BaseException:
            await self._end(output_ended=True)
            raise
        return self

    async def _io(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await self._conn.io(awaitable)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        self._done = True
        if self._holds:
            self._holds = False
            self._conn._release()

    @property
    def _abandoned(self) -> bool:
        """Opened by ``async for`` alone, whose loop is gone (left by break; its finaliser may not have run yet)."""
        return self._loop_ref is not None and self._loop_ref() is None

    async def _end(self, output_ended: bool) -> None:
        if self._done or self._closing:
            return
        if self._conn._broken is not None:  # the connection was closed under the stream: nothing to say
            self._release()
            return
        self._closing = True
        try:
            if self._channel is not None:
                self._state.take_rest(await self._io(self._channel.close(output_ended)))
        finally:
            self._release()

    async def _turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> AnnotatedBatch | None:
        assert self._channel is not None
        return await self._take_turn(await self._io(self._channel.turn(batch, metadata, is_data)))

    async def _take_turn(self, turn: tuple[Items, bool]) -> AnnotatedBatch | None:
        items, eos = turn
        state = self._state
        try:
            return state.take_turn(items, eos)
        finally:
            if state.phase is not Phase.OPEN:
                await self._end(output_ended=True)

    def _check_open(self) -> None:
        if self._done:
            raise ProtocolError(f"{self.method.name}(): Stream has been closed or cancelled")

    # -- public -------------------------------------------------------------------------------

    @property
    def header(self) -> Any:
        """The stream header dataclass (None when the method declares none, or before the stream opened)."""
        return self._state.header

    @property
    def finished(self) -> bool:
        """True once the stream has ended (finished, closed, cancelled or failed)."""
        return self._done

    async def tick(self, metadata: Mapping[str, str] | Mapping[bytes, bytes] | None = None) -> AnnotatedBatch | None:
        """Ask a producer for its next batch; None when it has finished."""
        async with self._serial():
            return await self._tick(metadata)

    async def _tick(self, metadata: Mapping[str, str] | Mapping[bytes, bytes] | None) -> AnnotatedBatch | None:
        await self._open()
        self._check_open()
        state = self._state
        if state.turn_per_request:
            answered, out = state.first_output()
            if answered:
                if state.ended:
                    await self._end(output_ended=True)
                return out
        batch, md = state.tick(metadata)
        return await self._turn(batch, _traced(md) if state.turn_per_request else md)

    async def exchange(self, batch: AnnotatedBatch | pa.RecordBatch) -> AnnotatedBatch:
        """Send one input batch; the output batch it produced."""
        async with self._serial():
            return await self._exchange(batch)

    async def _exchange(self, batch: AnnotatedBatch | pa.RecordBatch) -> AnnotatedBatch:
        await self._open()
        self._check_open()
        data, md = self._state.exchange(batch)
        out = await self._turn(data, _traced(md) if self._state.turn_per_request else md)
        if out is None:
            raise ProtocolError(f"{self.method.name}(): the server ended the stream without an output batch")
        return out

    async def cancel(self) -> None:
        """Cancel the stream: the server calls the state's ``on_cancel`` and closes the output."""
        async with self._serial():
            await self._cancel()

    async def _cancel(self) -> None:
        if self._done or self._channel is None:
            self._release()  # never opened: nothing to tell the server
            return
        items, eos = await self._io(self._channel.turn(*self._state.cancel(), _never))
        self._state.take_rest(items)
        await self._end(output_ended=eos)

    async def aclose(self) -> None:
        """End the stream: close the input, then read the output to its end."""
        async with self._serial():
            await self._end(output_ended=self._state.ended)

    async def _iterate(self) -> AsyncIterator[AnnotatedBatch]:
        try:
            batch = await self.tick()
            if batch is None:
                return
            yield batch
            if self._ticks_ahead():
                # as the sync client: a producer of ours that accepted ticks ahead keeps up to
                # TICKS_AHEAD in flight; a loop left early lets it run that many more times
                turn_ahead = self._channel.turn_ahead  # type: ignore[union-attr]
                while True:
                    async with self._serial():
                        batch = None if self._done else await self._take_turn(await self._io(turn_ahead(is_data)))
                    if batch is None:
                        return
                    yield batch
            while True:
                batch = await self.tick()
                if batch is None:
                    return
                yield batch
        finally:
            await self.aclose()

    def _ticks_ahead(self) -> bool:
        """Whether iteration may send ticks before their output is read (as the sync session's)."""
        return not self._done and may_tick_ahead(self._channel, self._conn.offload)

    def __aiter__(self) -> AsyncIterator[AnnotatedBatch]:
        loop = self._iterate()
        if self._channel is None and not self._done:
            self._loop_ref = weakref.ref(loop)
        return loop

    def __await__(self) -> Generator[Any, None, AsyncStreamSession]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncStreamSession:
        return await self._open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _never(batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> bool:
    return False
