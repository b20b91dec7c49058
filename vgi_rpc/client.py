"""RpcConnection: the typed proxy over any client transport, one class for every driver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa

from ._core import keys
from ._core.framing import BatchReader, decode_messages
from ._core.invoke import RequestEncoder, read_unary_reply
from ._core.ipc import (
    EMPTY_SCHEMA,
    EMPTY_STREAM,
    TICK,
    TICK_MESSAGE,
    IpcValidation,
    Items,
    StreamWriter,
    empty_batch,
    validate,
)
from ._core.messages import BatchKind, classify, parse_error, parse_log
from ._core.service import MethodSpec, ServiceSpec, service_spec
from ._core.streams import AnnotatedBatch
from .errors import ProtocolError, RpcError, TransportError
from .log import Message

__all__ = ["ClientTransport", "RpcConnection", "StreamSession"]

P = TypeVar("P")


class ClientTransport(Protocol):
    """What a connection needs from a transport."""

    def read_stream(self) -> tuple[pa.Schema, Items] | None:
        """The next IPC stream, or None at end of input."""

    def read_messages(self) -> list[tuple[bytes | bytearray, bool]] | None:
        """The next IPC stream as framed messages (``FrameReader.read_messages``), or None at end of input."""

    def write(self, data: bytes | bytearray | pa.Buffer | list[bytes]) -> None:
        """Send bytes."""

    def close(self) -> None:
        """Release the transport."""

    def open_reader(self) -> BatchReader:
        """Open the next IPC stream for batch-by-batch reading."""


class _ProxyBase:
    """Base of the generated proxy classes; one method per RPC method."""

    __slots__ = ("_connection",)

    def __init__(self, connection: RpcConnection[Any]) -> None:
        self._connection = connection

    @property
    def _transport(self) -> ClientTransport:
        return self._connection.transport

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self._connection.transport!r}>"


def _make_method(spec: MethodSpec, encoder: RequestEncoder) -> Callable[..., Any]:
    if spec.is_stream:

        def stream_call(self: _ProxyBase, *args: Any, **kwargs: Any) -> StreamSession:
            return StreamSession(self._connection, spec, encoder.encode(args, kwargs))

        stream_call.__name__ = spec.name
        stream_call.__doc__ = spec.info.doc
        return stream_call

    def call(self: _ProxyBase, *args: Any, **kwargs: Any) -> Any:
        return self._connection._call_unary(spec, encoder, args, kwargs)

    call.__name__ = spec.name
    call.__doc__ = spec.info.doc
    return call


_PROXY_CLASSES: dict[type, type[_ProxyBase]] = {}


def _proxy_class(service: ServiceSpec) -> type[_ProxyBase]:
    cls = _PROXY_CLASSES.get(service.protocol)
    if cls is None:
        namespace: dict[str, Any] = {"__slots__": ()}
        for name, m in service.methods.items():
            namespace[name] = _make_method(m, RequestEncoder(service, m))
        cls = type(f"{service.protocol.__name__}Proxy", (_ProxyBase,), namespace)
        _PROXY_CLASSES[service.protocol] = cls
    return cls


class RpcConnection(Generic[P]):
    """A client connection over a transport; ``with RpcConnection(...) as proxy:`` yields the typed proxy.

    Calls on one connection are serialised (the wire is lock-step). After a transport or protocol
    error the connection is broken and every further call raises ``TransportError``.
    """

    def __init__(
        self,
        protocol: type[P],
        transport: ClientTransport,
        on_log: Callable[[Message], None] | None = None,
        *,
        external_location: Any | None = None,
        ipc_validation: IpcValidation = IpcValidation.FULL,
    ) -> None:
        if external_location is not None:
            raise NotImplementedError("external_location is not supported yet")
        self.protocol = protocol
        self.transport = transport
        self.on_log = on_log
        self.ipc_validation = ipc_validation
        self.service = service_spec(protocol)
        self._lock = threading.Lock()
        self._broken: BaseException | None = None
        self._stream: StreamSession | None = None
        self.proxy: P = _proxy_class(self.service)(self)  # type: ignore[assignment]

    def __enter__(self) -> P:
        return self.proxy

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()

    def _call_unary(self, spec: MethodSpec, encoder: RequestEncoder, args: tuple[Any, ...], kwargs: Any) -> Any:
        data = encoder.encode(args, kwargs)
        with self._lock:
            self._check_usable()
            try:
                self.transport.write(data)
                messages = self.transport.read_messages()
                if messages is None:
                    raise TransportError(f"{spec.name}(): the server closed the connection")
                codec = encoder.reply_codec
                if codec is not None:
                    row = codec.decode(messages)
                    if row is not None:
                        return row[0] if row else None  # () is a void method's reply
                _, items = decode_messages(messages)
            except Exception as exc:
                self._broken = exc
                raise
        return read_unary_reply(spec, items, self.on_log, self.ipc_validation)

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise TransportError(f"the connection is broken: {self._broken}") from self._broken
        if self._stream is not None:
            raise RuntimeError(
                f"a {self._stream.method.name}() stream is open on this connection; close it before the next call"
            )


_TICK = TICK
_EMPTY_INPUT = EMPTY_STREAM
_TICK_MESSAGE = TICK_MESSAGE  # ticks after the first skip the IPC writer: the message is constant


class StreamSession:
    """The client side of one stream call.

    Iterate it for a producer stream (``for batch in proxy.produce(...)``), or call
    :meth:`exchange` for an exchange stream. Leaving a ``with`` block, breaking out of the loop or
    calling :meth:`close` ends the stream cleanly and leaves the connection usable.
    """

    def __init__(self, connection: RpcConnection[Any], method: MethodSpec, request: bytes) -> None:
        self.method = method
        self._conn = connection
        self._transport = connection.transport
        self._on_log = connection.on_log
        self._writer: StreamWriter | None = None
        self._reader: BatchReader | None = None
        self._done = False
        self.header: Any = None
        with connection._lock:
            connection._check_usable()
            connection._stream = self
        try:
            self._io(self._transport.write, request)
            if method.header_spec is not None:
                self.header = self._read_header()
        except BaseException:
            self._release()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def _io(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (TransportError, ProtocolError, OSError) as exc:
            self._broke(exc)
            raise

    def _broke(self, exc: BaseException) -> None:
        self._conn._broken = exc
        self._release()

    def _release(self) -> None:
        self._done = True
        if self._conn._stream is self:
            self._conn._stream = None

    def _read_header(self) -> Any:
        incoming = self._io(self._transport.read_stream)
        if incoming is None:
            raise TransportError(f"{self.method.name}(): the server closed the connection")
        assert self.method.header_spec is not None
        header: Any = None
        error: RpcError | None = None
        for batch, md in incoming[1]:
            kind = classify(batch.num_rows, md or {})
            if kind is BatchKind.LOG:
                self._deliver_log(md or {})
            elif kind is BatchKind.ERROR:
                error = error or parse_error(md or {})
            elif kind is BatchKind.DATA and batch.num_rows == 1:
                header = self.method.header_spec.py_type.deserialize_from_batch(
                    batch, ipc_validation=self._conn.ipc_validation
                )
        if error is not None or header is None:
            # the server consumes one input stream after a failed start: send an empty one
            self._io(self._transport.write, _EMPTY_INPUT)
            self._release()
            raise error or ProtocolError(f"{self.method.name}(): the header stream held no header")
        return header

    def _deliver_log(self, md: dict[bytes, bytes]) -> None:
        if self._on_log is not None:
            self._on_log(parse_log(md))

    def _send(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> None:
        writer = self._writer
        if writer is None:
            writer = self._writer = StreamWriter(batch.schema)
        writer.write(batch, metadata)
        try:
            self._transport.write(writer.take())
        except (TransportError, ProtocolError, OSError) as exc:
            self._broke(exc)
            raise

    def _end_input(self) -> None:
        if self._writer is None:
            self._io(self._transport.write, _EMPTY_INPUT)
        else:
            self._writer.end()
            self._io(self._transport.write, self._writer.take())

    def _receive(self) -> AnnotatedBatch | None:
        """Read logs up to the next data batch; None when the server ended the output."""
        reader = self._reader
        if reader is None:
            reader = self._reader = self._io(self._transport.open_reader)
        while True:
            try:
                incoming = reader.next()
            except (TransportError, ProtocolError, OSError) as exc:
                self._broke(exc)
                raise
            if incoming is None:
                self._end_input()
                self._release()
                return None
            batch, md = incoming
            kind = classify(batch.num_rows, md) if md else BatchKind.DATA
            if kind is BatchKind.DATA:
                validate(batch, self._conn.ipc_validation)
                return AnnotatedBatch(batch, _user_metadata(md))
            assert md is not None
            if kind is BatchKind.LOG:
                self._deliver_log(md)
            elif kind is BatchKind.ERROR:
                error = parse_error(md)
                self._io(reader.drain)
                self._end_input()
                self._release()
                raise error
            else:
                raise ProtocolError(f"{self.method.name}(): unsupported {kind.value} batch in a stream")

    # -- public -----------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once the stream has ended (finished, closed, cancelled or failed)."""
        return self._done

    @property
    def typed_header(self) -> Any:
        """The stream header dataclass (None when the method declares none)."""
        return self.header

    def tick(self, metadata: dict[str, str] | None = None) -> AnnotatedBatch | None:
        """Ask a producer for its next batch; None when it has finished."""
        if self._done:
            return None
        if metadata:
            self._send(_TICK, {k.encode(): v.encode() for k, v in metadata.items()})
        elif self._writer is not None and len(self._writer.schema) == 0:
            self._io(self._transport.write, _TICK_MESSAGE)
        else:
            self._send(_TICK, None)
        return self._receive()

    def __iter__(self) -> Iterator[AnnotatedBatch]:
        try:
            while True:
                batch = self.tick()
                if batch is None:
                    return
                yield batch
        finally:
            self.close()

    def exchange(self, batch: AnnotatedBatch | pa.RecordBatch) -> AnnotatedBatch:
        """Send one input batch and return the output batch it produced."""
        if self._done:
            raise RuntimeError(f"the {self.method.name}() stream is closed")
        if isinstance(batch, AnnotatedBatch):
            kv = batch.custom_metadata
            self._send(batch.batch, dict(kv) if kv is not None else None)
        else:
            self._send(batch, None)
        out = self._receive()
        if out is None:
            raise ProtocolError(f"{self.method.name}(): the server ended the stream without an output batch")
        return out

    def close(self) -> None:
        """End the stream: close the input, then read the output to its end."""
        if self._done:
            return
        try:
            self._end_input()
            self._drain()
        finally:
            self._release()

    def cancel(self) -> None:
        """Cancel the stream: the server calls the state's ``on_cancel`` and closes the output."""
        if self._done:
            return
        try:
            schema = self._writer.schema if self._writer is not None else EMPTY_SCHEMA
            self._send(empty_batch(schema), {keys.CANCEL: b"1"})
            self._end_input()
            self._drain()
        finally:
            self._release()

    def _drain(self) -> None:
        if self._reader is None:
            self._reader = self._io(self._transport.open_reader)
        while (incoming := self._io(self._reader.next)) is not None:
            batch, md = incoming
            if classify(batch.num_rows, md or {}) is BatchKind.LOG:
                self._deliver_log(md or {})

    def __enter__(self) -> StreamSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _user_metadata(md: dict[bytes, bytes] | None) -> pa.KeyValueMetadata | None:
    if not md:
        return None
    kept = {k: v for k, v in md.items() if k not in (keys.STREAM_STATE, keys.CALL_STATE)}
    return pa.KeyValueMetadata(kept) if kept else None
