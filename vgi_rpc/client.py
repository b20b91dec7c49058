"""RpcConnection: the typed proxy over any client transport, one class for every driver."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import pyarrow as pa

from ._core.invoke import RequestEncoder, read_unary_reply
from ._core.ipc import IpcValidation, Items
from ._core.service import MethodSpec, ServiceSpec, service_spec
from .errors import TransportError
from .log import Message

__all__ = ["ClientTransport", "RpcConnection"]

P = TypeVar("P")


class ClientTransport(Protocol):
    """What a connection needs from a transport."""

    def read_stream(self) -> tuple[pa.Schema, Items] | None:
        """The next IPC stream, or None at end of input."""

    def write(self, data: bytes | pa.Buffer) -> None:
        """Send bytes."""

    def close(self) -> None:
        """Release the transport."""


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

        def stream_call(self: _ProxyBase, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(f"{spec.name}() is a stream method; streams are not implemented yet")

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
            if self._broken is not None:
                raise TransportError(f"the connection is broken: {self._broken}") from self._broken
            try:
                self.transport.write(data)
                incoming = self.transport.read_stream()
                if incoming is None:
                    raise TransportError(f"{spec.name}(): the server closed the connection")
            except Exception as exc:
                self._broken = exc
                raise
        _, items = incoming
        return read_unary_reply(spec, items, self.on_log, self.ipc_validation)
