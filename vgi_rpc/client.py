"""RpcConnection: the typed proxy over any client driver, one class for every transport.

A connection drives the client state machine (``_core/invoke``) over a driver of one of two
shapes: a long stream per direction (``LongStreamDriver`` over any ByteStream: pipe, subprocess,
later shared memory) or one request per turn (``Driver.turn_per_request``; HTTP). Neither the
proxy nor :class:`StreamSession` sorts batches or loops over a stream: they move items between
the driver and the state machine.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import pyarrow as pa

from ._core import wirelog
from ._core.codec import RowCodec
from ._core.framing import decode_messages
from ._core.invoke import ClientStream, Phase, Request, RequestEncoder, is_data, read_unary_reply, request_size
from ._core.ipc import IpcValidation, Items
from ._core.longstream import ByteStream, LongStreamDriver
from ._core.offload import Offload
from ._core.service import MethodSpec, ServiceSpec, service_spec
from ._core.streams import AnnotatedBatch
from .deadline import Watchdog
from .errors import IPCError, ProtocolError, RpcTimeoutError, TransportError
from .log import Message

if TYPE_CHECKING:
    from .external.config import ExternalLocationConfig

__all__ = ["Driver", "ProtocolClass", "RpcConnection", "StreamChannel", "StreamSession"]

P = TypeVar("P")

# A Protocol class, as the entry points take it: typed as a callable returning P because type
# checkers refuse a Protocol class where ``type[P]`` is expected ("Only concrete class can be
# given"); this way ``connect(Calculator, ...)`` type-checks and yields a proxy typed Calculator.
ProtocolClass = Callable[..., P]
Stop = Callable[[pa.RecordBatch, "dict[bytes, bytes] | None"], bool]


class StreamChannel(Protocol):
    """One stream call as a driver carries it."""

    header_items: Items  # the header stream's items (empty when the method declares no header)

    def init_items(self) -> Items:
        """Items that came with the call's start (turn-per-request: init logs and state tokens)."""

    def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Stop) -> tuple[Items, bool]:
        """Send one input; return that turn's output items and whether the output stream ended."""

    def close(self, output_ended: bool) -> Items:
        """End the call's input; return what was left of its output."""


class AheadChannel(StreamChannel, Protocol):
    """A stream channel that can send producer ticks ahead of their output (long streams)."""

    def ticks_ahead(self) -> bool:
        """Whether the producer accepted ticks ahead (on its output schema)."""

    def turn_ahead(self, stop: Stop) -> tuple[Items, bool]:
        """The next turn, with the window of ticks ahead kept full."""


def may_tick_ahead(channel: object, offload: object | None) -> bool:
    """Whether iterating a stream on *channel* may send ticks ahead (for sync and async sessions).

    Only a long-stream channel can (``ticks_ahead``), once its producer accepted them, and not
    with a side channel (*offload*), whose regions are lent one turn at a time.
    """
    accepted = getattr(channel, "ticks_ahead", None)
    return offload is None and accepted is not None and bool(accepted())


class Driver(Protocol):
    """What a connection needs from a transport: unary exchanges and stream channels."""

    def unary(
        self, request: Request, what: str, route: tuple[str, str] | None = None
    ) -> list[tuple[bytes | bytearray | memoryview, bool]]:
        """Send one request stream (bytes, or chunks to write in order); return the reply's framed messages.

        *route* is the (protocol, method) the request names, when the caller knows it (an HTTP
        driver needs it for the URL and would otherwise read it from the request's metadata).
        """

    def open_stream(self, request: Request, has_header: bool, what: str) -> StreamChannel:
        """Start a stream call."""

    def close(self) -> None:
        """Release the transport."""


def trace_metadata() -> dict[bytes, bytes] | None:
    """The current OpenTelemetry trace context as request metadata (``traceparent``, ``tracestate``).

    Costs one dictionary lookup when OpenTelemetry is not in use (never imported by the program);
    otherwise its global propagator injects the current context, and None when there is no span.
    """
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k.encode(): v.encode() for k, v in carrier.items()} or None


def _traced(md: dict[bytes, bytes] | None) -> dict[bytes, bytes] | None:
    """A turn-per-request input's metadata with the current trace context (each turn is a request)."""
    trace = trace_metadata()
    return {**md, **trace} if md and trace else (trace or md)


class _ProxyBase:
    """Base of the generated proxy classes; one method per RPC method."""

    __slots__ = ("_connection",)

    def __init__(self, connection: RpcConnection[Any]) -> None:
        self._connection = connection

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self._connection.transport!r}>"


def _make_method(spec: MethodSpec, encoder: RequestEncoder) -> Callable[..., Any]:
    if spec.is_stream:

        def stream_call(self: _ProxyBase, *args: Any, **kwargs: Any) -> StreamSession:
            return StreamSession(
                self._connection, spec, encoder.encode(args, kwargs, trace_metadata(), self._connection.request_offload)
            )

        stream_call.__name__ = spec.name
        stream_call.__doc__ = spec.info.doc
        return stream_call

    def call(self: _ProxyBase, *args: Any, **kwargs: Any) -> Any:
        return self._connection._call_unary(spec, encoder, args, kwargs)

    call.__name__ = spec.name
    call.__doc__ = spec.info.doc
    return call


_PROXY_CLASSES: dict[tuple[type, tuple[tuple[bytes, bytes], ...]], type[_ProxyBase]] = {}


def _proxy_class(service: ServiceSpec, extra: Mapping[bytes, bytes] | None = None) -> type[_ProxyBase]:
    """The proxy class of a Protocol (per extra request metadata a transport adds, e.g. a segment name)."""
    key = (service.protocol, tuple(sorted((extra or {}).items())))
    cls = _PROXY_CLASSES.get(key)
    if cls is None:
        namespace: dict[str, Any] = {"__slots__": ()}
        for name, m in service.methods.items():
            namespace[name] = _make_method(m, RequestEncoder(service, m, extra))
        cls = type(f"{service.protocol.__name__}Proxy", (_ProxyBase,), namespace)
        if len(_PROXY_CLASSES) > 1024:  # one per (Protocol, segment): bounded
            _PROXY_CLASSES.clear()
        _PROXY_CLASSES[key] = cls
    return cls


class RpcConnection(Generic[P]):
    """A client connection over a transport; ``with RpcConnection(...) as proxy:`` yields the typed proxy.

    *transport* is a ByteStream (``PipeTransport``, ``SubprocessTransport``, ...) or a ``Driver``.
    Calls on one connection are serialised (the wire is lock-step). After a transport or protocol
    error, or an exception (``KeyboardInterrupt`` too) in the middle of a call, the connection is
    broken and every further call raises ``TransportError``: it is never left out of step.
    """

    def __init__(
        self,
        protocol: ProtocolClass[P],
        transport: ByteStream | Driver,
        on_log: Callable[[Message], None] | None = None,
        *,
        external_location: ExternalLocationConfig | None = None,
        ipc_validation: IpcValidation = IpcValidation.FULL,
        offload: Offload | None = None,
        timeout: float | None = None,
    ) -> None:
        self.protocol: type = protocol  # type: ignore[assignment]
        self.transport = transport
        self.driver: Driver = transport if hasattr(transport, "open_stream") else LongStreamDriver(transport)  # type: ignore[assignment]
        self.turn_per_request = bool(getattr(self.driver, "turn_per_request", False))
        self.on_log = on_log
        self.ipc_validation = ipc_validation
        external = None
        if external_location is not None:  # the external extra, imported only when used
            from .external.offload import ExternalOffload

            external = ExternalOffload(external_location)
        self.offload = offload if offload is not None else getattr(transport, "offload", None) or external
        # parameters go through object storage only (a shared-memory side channel carries outputs and inputs)
        self.request_offload: Offload | None = external
        self._external = external
        self.service = service_spec(self.protocol)
        self._lock = threading.Lock()
        self._broken: BaseException | None = None
        self._stream: StreamSession | None = None
        self._watchdog = Watchdog(timeout, self._abort) if timeout is not None else None
        extra = getattr(transport, "request_metadata", None)  # e.g. a shared-memory segment's name and size
        self.proxy: P = _proxy_class(self.service, extra)(self)  # type: ignore[assignment]

    def __enter__(self) -> P:
        return self.proxy

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the transport (and the connections that fetched external objects)."""
        self.detach()
        self.driver.close()
        if self._external is not None:
            self._external.close()

    @property
    def reusable(self) -> bool:
        """True when the transport is in step and idle: no failure, no stream left open."""
        return self._broken is None and self._stream is None

    def detach(self) -> None:
        """Stop using the transport without closing it (a pool takes it back); the proxy is unusable after."""
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._broken is None:
            self._broken = TransportError("the connection was closed (or handed back to its pool)")

    def _abort(self) -> None:
        """Break the transport under a call that overran its deadline (runs on the watchdog's thread)."""
        abort = getattr(self.transport, "abort", None)
        (abort or self.driver.close)()

    def _call_unary(self, spec: MethodSpec, encoder: RequestEncoder, args: tuple[Any, ...], kwargs: Any) -> Any:
        request = encoder.encode(args, kwargs, trace_metadata(), self.request_offload)
        return self.call_request(spec, request, encoder.reply_codec, (self.service.name, spec.name))

    def call_request(
        self, spec: MethodSpec, data: Request, codec: RowCodec | None = None, route: tuple[str, str] | None = None
    ) -> Any:
        """Send one complete unary request stream for *spec*; its decoded result (or its RpcError raised).

        For callers that build requests themselves (``vgi_rpc.dynamic``); *codec* reads a
        fixed-row reply straight from its bytes when it applies; *route* is the (protocol,
        method) the request names, when known (HTTP reads it from the request otherwise).
        """
        if wirelog.on(wirelog.REQUEST):
            wirelog.REQUEST.debug("client -> %s.%s (%d bytes)", self.service.name, spec.name, request_size(data))
        with self._lock:
            self._check_usable()
            watchdog = self._watchdog
            if watchdog is not None:
                watchdog.arm()
            try:
                messages = self.driver.unary(data, spec.name + "()", route)
                if codec is not None:
                    row = codec.decode(messages)
                    if row is not None:
                        if wirelog.on(wirelog.RESPONSE):
                            wirelog.RESPONSE.debug("client <- %s.%s (template): %r", self.service.name, spec.name, row)
                        if wirelog.on(wirelog.BATCH):
                            wirelog.BATCH.debug("client <- data batch (template): %d columns", len(row))
                        return row[0] if row else None  # () is a void method's reply
                _, items = decode_messages(messages)
            except BaseException as exc:  # an interrupt too: the reply may still be on its way
                self._broken = exc
                raise self._explained(exc) from exc.__cause__
            finally:
                if watchdog is not None:
                    watchdog.disarm()
        if wirelog.on(wirelog.RESPONSE):
            wirelog.RESPONSE.debug("client <- %s.%s: %d batches", self.service.name, spec.name, len(items))
        return read_unary_reply(spec, items, self.on_log, self.ipc_validation, self.offload)

    def _explained(self, exc: BaseException) -> BaseException:
        """A transport failure with what the transport can tell about it (a worker's exit and stderr)."""
        if self._watchdog is not None and self._watchdog.fired:
            timed_out = RpcTimeoutError(
                f"no answer within the connection's timeout of {self._watchdog.timeout} s; the connection is closed"
            )
            self._broken = timed_out
            return timed_out
        detail = getattr(self.transport, "failure_detail", None)
        if not isinstance(exc, TransportError | IPCError) or detail is None:
            return exc
        text = detail(exc)
        if not text:
            return exc
        explained = type(exc)(f"{exc.error_message}; {text}")
        explained.__cause__ = exc.__cause__
        self._broken = explained
        return explained

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise TransportError(f"the connection is broken: {self._broken!r}") from self._broken
        if self._stream is not None:
            raise ProtocolError(
                f"the {self._stream.method.name}() stream is still open on this connection: close it (or leave "
                "its with block) before the next call, or use another connection"
            )


class StreamSession:
    """The client side of one stream call.

    Iterate it for a producer stream (``for batch in proxy.produce(...)``), or call
    :meth:`exchange` for an exchange stream. Leaving a ``with`` block, breaking out of the loop or
    calling :meth:`close` ends the stream cleanly and leaves the connection usable.
    """

    def __init__(self, connection: RpcConnection[Any], method: MethodSpec, request: Request) -> None:
        self.method = method
        self._conn = connection
        self._state = ClientStream(
            method,
            ipc_validation=connection.ipc_validation,
            on_log=connection.on_log,
            offload=connection.offload,
            turn_per_request=connection.turn_per_request,
        )
        self._done = False
        if wirelog.on(wirelog.STREAM):
            wirelog.STREAM.debug("client -> %s: stream start", self._state.what)
        with connection._lock:
            connection._check_usable()
            connection._stream = self
        self._channel: StreamChannel = self._io(
            connection.driver.open_stream, request, method.header_spec is not None, self._state.what
        )
        try:
            if method.header_spec is not None:
                self._state.take_header(self._channel.header_items)
            self._state.take_init(self._channel.init_items())
        except BaseException:
            self._end(output_ended=True)
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def _io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a driver operation; any failure in it breaks the connection (it may be out of step)."""
        watchdog = self._conn._watchdog
        try:
            if watchdog is None:
                return fn(*args)
            watchdog.arm()
            return fn(*args)
        except BaseException as exc:
            self._conn._broken = exc
            self._release()
            raise self._conn._explained(exc) from exc.__cause__
        finally:
            if watchdog is not None:
                watchdog.disarm()

    def _release(self) -> None:
        self._done = True
        if self._conn._stream is self:
            self._conn._stream = None

    def _end(self, output_ended: bool) -> None:
        """Close the input (reading what is left of the output) and release the connection."""
        if self._done:
            return
        if wirelog.on(wirelog.STREAM):
            wirelog.STREAM.debug("client -> %s: stream end (output ended: %s)", self._state.what, output_ended)
        try:
            self._state.take_rest(self._io(self._channel.close, output_ended))
        finally:
            self._release()

    def _turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> AnnotatedBatch | None:
        if self._conn._watchdog is not None:
            return self._take_turn(*self._io(self._channel.turn, batch, metadata, is_data))
        try:
            items, eos = self._channel.turn(batch, metadata, is_data)
        except BaseException as exc:  # the turn's output may still be on its way: out of step
            self._conn._broken = exc
            self._release()
            raise self._conn._explained(exc) from exc.__cause__
        return self._take_turn(items, eos)

    def _take_turn(self, items: Items, eos: bool) -> AnnotatedBatch | None:
        state = self._state
        try:
            return state.take_turn(items, eos)
        finally:
            if state.phase is not Phase.OPEN:
                self._end(output_ended=True)

    def _end_if_ended(self) -> None:
        if self._state.ended:
            self._end(output_ended=True)

    # -- public -----------------------------------------------------------------------------

    @property
    def header(self) -> Any:
        """The stream header dataclass (None when the method declares none)."""
        return self._state.header

    @property
    def finished(self) -> bool:
        """True once the stream has ended (finished, closed, cancelled or failed)."""
        return self._done

    @property
    def typed_header(self) -> Any:
        """The stream header dataclass (None when the method declares none)."""
        return self._state.header

    def tick(self, metadata: Mapping[str, str] | Mapping[bytes, bytes] | None = None) -> AnnotatedBatch | None:
        """Ask a producer for its next batch; None when it has finished.

        *metadata* (a dict of str, or bytes keys and values such as a ``pa.KeyValueMetadata``)
        reaches the producer's ``process`` as the tick's custom metadata. A tick after the stream
        ended (finished, closed or cancelled) raises ``ProtocolError``, as in 0.52.2.
        """
        if self._done:
            raise ProtocolError(f"{self.method.name}(): Stream has been closed or cancelled")
        state = self._state
        if state.turn_per_request:
            answered, out = state.first_output()
            if answered:
                self._end_if_ended()
                return out
        batch, md = state.tick(metadata)
        return self._turn(batch, _traced(md) if state.turn_per_request else md)

    def __iter__(self) -> Iterator[AnnotatedBatch]:
        try:
            batch = self.tick()
            if batch is None:
                return
            yield batch
            if self._ticks_ahead():
                yield from self._ahead()
                return
            while True:
                batch = self.tick()
                if batch is None:
                    return
                yield batch
        finally:
            self.close()

    def _ticks_ahead(self) -> bool:
        """Whether iteration may send ticks before their output is read (see :meth:`_ahead`)."""
        return not self._done and may_tick_ahead(self._channel, self._conn.offload)

    def _ahead(self) -> Iterator[AnnotatedBatch]:
        """Iterate a producer of ours that accepted ticks ahead: up to TICKS_AHEAD ticks in flight.

        The worker answers each tick as it reads it, so it produces the next batches while this
        side reads and uses the last one, and neither waits for the other's wake-up per batch.
        Batches arrive in order, one per tick, as in lock-step; what changes is that a loop left
        early has let the producer run up to TICKS_AHEAD more times (their output is read and
        dropped by ``close``). ``tick()`` keeps lock-step.
        """
        turn = cast(AheadChannel, self._channel).turn_ahead
        while True:
            out = self._take_turn(*self._io(turn, is_data))
            if out is None:
                return
            yield out

    def exchange(self, batch: AnnotatedBatch | pa.RecordBatch) -> AnnotatedBatch:
        """Send one input batch and return the output batch it produced.

        After the stream ended (closed, cancelled or failed) it raises ``ProtocolError``.
        """
        if self._done:
            raise ProtocolError(f"{self.method.name}(): Stream has been closed or cancelled")
        data, md = self._state.exchange(batch)
        out = self._turn(data, _traced(md) if self._state.turn_per_request else md)
        if out is None:
            raise ProtocolError(f"{self.method.name}(): the server ended the stream without an output batch")
        return out

    def close(self) -> None:
        """End the stream: close the input, then read the output to its end."""
        self._end(output_ended=self._state.ended)

    def cancel(self) -> None:
        """Cancel the stream: the server calls the state's ``on_cancel`` and closes the output."""
        if self._done:
            return
        items, eos = self._io(self._channel.turn, *self._state.cancel(), _never)
        self._state.take_rest(items)
        self._end(output_ended=eos)

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _never(batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> bool:
    return False
