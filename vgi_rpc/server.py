"""RpcServer: a Protocol, its implementation and options, served over any byte-stream transport."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa

from ._core.describe import Reflection, ReflectionImpl
from ._core.dispatch import Dispatcher, Hosted, Reply, StreamStart
from ._core.framing import BatchReader
from ._core.ipc import EMPTY_SCHEMA, IpcValidation, Items, StreamWriter, encode_stream
from ._core.observe import CallObserver
from ._core.service import service_spec
from .errors import IPCError, MalformedStreamError, TransportError

__all__ = ["RpcServer", "ServerTransport"]

_log = logging.getLogger("vgi_rpc.rpc")


class ServerTransport(Protocol):
    """What ``RpcServer.serve`` needs from a transport."""

    def read_stream(self) -> tuple[pa.Schema, Items] | None:
        """The next IPC stream, or None at a clean end of input."""

    def read_messages(self) -> list[tuple[bytes | bytearray, bool]] | None:
        """The next IPC stream as framed messages, or None at a clean end of input."""

    def write(self, data: bytes | bytearray | pa.Buffer | list[bytes]) -> None:
        """Send bytes."""

    def open_reader(self) -> BatchReader:
        """Open the next IPC stream for batch-by-batch reading."""


class RpcServer:
    """Serves one Protocol implementation.

    Args:
        protocol: The Protocol class describing the service.
        implementation: An object implementing every method of *protocol*.
        external_location: External storage for large batches (not supported yet; must be None).
        server_id: A fixed server id (default: 12 random hex digits).
        enable_describe: Host the ``vgi_rpc.Reflection.v1`` introspection protocol.
        ipc_validation: How thoroughly received batches are validated.

    """

    def __init__(
        self,
        protocol: type,
        implementation: object,
        *,
        external_location: Any | None = None,
        server_id: str | None = None,
        enable_describe: bool = False,
        ipc_validation: IpcValidation | None = IpcValidation.FULL,
        include_tracebacks: bool = True,
        server_version: str = "",
        observers: Sequence[CallObserver] = (),
    ) -> None:
        if external_location is not None:
            raise NotImplementedError("external_location is not supported yet")
        self.protocol = protocol
        self.implementation = implementation
        self.spec = service_spec(protocol)
        self.server_id = server_id or secrets.token_hex(6)
        self.enable_describe = enable_describe
        self.ipc_validation = ipc_validation or IpcValidation.FULL
        hosted = [Hosted(self.spec, implementation)]
        if enable_describe:
            reflection = service_spec(Reflection)
            impl = ReflectionImpl([self.spec, reflection], self.server_id, server_version)
            hosted.append(Hosted(reflection, impl, framework=True))
        self.dispatcher = Dispatcher(
            hosted,
            server_id=self.server_id,
            ipc_validation=self.ipc_validation,
            include_tracebacks=include_tracebacks,
            observers=observers,
        )

    @property
    def protocol_name(self) -> str:
        """The wire name of the served Protocol."""
        return self.spec.name

    def serve(self, transport: ServerTransport) -> None:
        """Serve requests from *transport* until it reaches end of input.

        Bytes that cannot be framed as Arrow IPC leave no way to find the next request on a pipe:
        the server logs one line and stops.
        """
        while True:
            try:
                messages = transport.read_messages()
                if messages is None:
                    return
                reply = self.dispatcher.handle_messages(messages)
                if isinstance(reply, StreamStart):
                    self._serve_stream(transport, reply)
                    continue
                transport.write(reply.stream())
                if reply.drain_input:
                    transport.read_stream()
            except MalformedStreamError as exc:
                # framed correctly, so the next request can still be found: answer and go on
                self._answer(transport, self.dispatcher.error_reply(exc, EMPTY_SCHEMA, None))
            except IPCError as exc:
                # no framing on a pipe: after bytes that are not IPC there is no next request to find;
                # closing tells the client at once instead of leaving it waiting
                _log.error("vgi_rpc server: stopping: %s", exc)
                _close(transport)
                return
            except TransportError as exc:
                _log.error("vgi_rpc server: stopping: %s", exc)
                return
            except Exception:
                _log.exception("vgi_rpc server: internal error; closing the connection")
                _close(transport)
                return

    def _serve_stream(self, transport: ServerTransport, start: StreamStart) -> None:
        """Drive one stream call in lock-step: one input batch in, that step's output out."""
        call = start.call
        try:
            if start.header is not None:
                transport.write(encode_stream(*start.header))
            reader = transport.open_reader()
            writer = StreamWriter(call.output_schema)
            while True:
                incoming = reader.next()
                result = call.end() if incoming is None else call.step(*incoming)
                for batch, md in result.items:
                    writer.write(batch, md)
                if result.done:
                    writer.end()
                transport.write(writer.take())
                if result.done:
                    reader.drain()
                    return
        finally:
            self.dispatcher.stream_finished(start)

    def _answer(self, transport: ServerTransport, reply: Reply) -> None:
        try:
            transport.write(reply.stream())
        except TransportError as exc:
            _log.error("vgi_rpc server: cannot answer: %s", exc)


def _close(transport: ServerTransport) -> None:
    close = getattr(transport, "close", None)
    if close is not None:
        close()
