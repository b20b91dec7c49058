"""The exception tree of vgi_rpc.

Every exception the library raises derives from :class:`VgiRpcError`. Code written for vgi-rpc
0.52.2 catches ``RpcError`` and reads ``error_type``, so every error a call can raise is an
``RpcError`` carrying 0.52.2's ``error_type``; the subclasses refine it and say whose fault it is::

    VgiRpcError
    └── RpcError                     error_type = the remote exception's class name
        │                            (an RpcError itself: the remote service raised it)
        ├── VersionError             the request version was missing or unsupported (remote)
        │   └── ProtocolVersionError the Protocol versions of the two sides differ (remote)
        ├── ArgumentError            refused before anything was sent: arguments that do not
        │                            fit the method or the API (error_type "TypeError",
        │                            "ValueError" or "KeyError", as 0.52.2 names them); also a
        │                            TypeError
        ├── ImplementationError      an implementation does not match its Protocol (raised when
        │                            the server is built; error_type "TypeError"); a TypeError
        ├── TransportError           error_type "TransportError": the byte stream broke (EOF,
        │   │                        a dead worker, a closed pipe); also a ConnectionError
        │   ├── ConnectionClosedError  ... the peer closed it between two messages
        │   └── RpcTimeoutError      ... a call overran the connection's timeout (a TimeoutError)
        └── ProtocolError            error_type "ProtocolError": the peer broke the wire protocol,
            │                        or a stream was used after it was closed or cancelled
            ├── IPCError             ... bytes that are not a valid Arrow IPC stream
            │   └── MalformedStreamError  ... a well-framed stream whose contents do not decode
            └── ExternalLocationError  ... a pointer batch's object (S3/GCS/URL) is refused,
                                     missing, too big, undecodable or fails its SHA-256
                                     (error_type "RuntimeError", as 0.52.2; a RuntimeError)

The ones the client detects itself (TransportError, ProtocolError and below) have
``error_code`` "" and no remote traceback, as in 0.52.2. A remote error leaves the connection
usable; a transport or protocol error met in the middle of a call breaks it (every further
call raises ``TransportError``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArgumentError",
    "ConnectionClosedError",
    "ExternalLocationError",
    "IPCError",
    "ImplementationError",
    "MalformedStreamError",
    "ProtocolError",
    "ProtocolVersionError",
    "RpcError",
    "RpcTimeoutError",
    "TransportError",
    "VersionError",
    "VgiRpcError",
]


class VgiRpcError(Exception):
    """Root of every exception raised by vgi_rpc."""


class RpcError(VgiRpcError):
    """An error raised by the remote service (or its framework) and carried back in an error batch.

    Attributes:
        error_type: The remote exception's class name, e.g. ``"ValueError"``.
        error_message: The remote exception's own message, without the type prefix.
        remote_traceback: The formatted server-side traceback ("" when the server sent none).
        request_id: The server's id of the request, when it sent one.
        error_code: A gRPC status code name (``"UNKNOWN"``, ``"UNIMPLEMENTED"``, ...).
        error_kind: An open-set classification token (``"method_not_implemented"``, ...) or "".
        error_details: Structured details (``[{"@type": ...}]``), or None.

    """

    def __init__(
        self,
        error_type: str,
        error_message: str,
        remote_traceback: str,
        *,
        request_id: str = "",
        error_code: str = "",
        error_kind: str = "",
        error_details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {error_message}")
        self.error_type = error_type
        self.error_message = error_message
        self.remote_traceback = remote_traceback
        self.request_id = request_id
        self.error_code = error_code
        self.error_kind = error_kind
        self.error_details = error_details

    @property
    def code(self) -> str:
        """The gRPC status code name (alias of ``error_code``)."""
        return self.error_code

    @property
    def details(self) -> list[dict[str, Any]]:
        """The structured error details (an empty list when there are none)."""
        return list(self.error_details or [])


class VersionError(RpcError):
    """The request carried no, or an unsupported, ``vgi_rpc.request_version``."""


class ProtocolVersionError(VersionError):
    """The client's Protocol version does not match the server's (major.minor)."""


class _LocalError(RpcError):
    """An error the client detected itself: ``error_type`` is fixed per class, no remote traceback."""

    ERROR_TYPE = ""

    def __init__(self, message: str = "", *, error_type: str | None = None) -> None:
        super().__init__(error_type or self.ERROR_TYPE, message, "")


class ArgumentError(_LocalError, TypeError):
    """Arguments refused on the client before anything was sent (the connection stays usable).

    ``error_type`` is the builtin 0.52.2 would report for the same mistake (``"TypeError"`` by
    default, ``"KeyError"`` for an unknown enum member, ``"ValueError"`` for a bad value).
    """

    ERROR_TYPE = "TypeError"


class ImplementationError(_LocalError, TypeError):
    """An implementation does not match its Protocol: found when the server is built."""

    ERROR_TYPE = "TypeError"


class TransportError(_LocalError, ConnectionError):
    """The byte stream under a connection failed: end of file, a dead worker, a broken pipe."""

    ERROR_TYPE = "TransportError"


class ConnectionClosedError(TransportError):
    """The peer closed the connection cleanly, between two messages (not in the middle of one)."""


class RpcTimeoutError(TransportError, TimeoutError):
    """A call or stream turn did not finish within the connection's ``timeout``; the connection is closed."""


class ProtocolError(_LocalError):
    """The peer sent something that breaks the vgi-rpc wire protocol, or a stream was used after its end."""

    ERROR_TYPE = "ProtocolError"


class IPCError(ProtocolError):
    """Bytes that do not form a valid Arrow IPC stream."""


class MalformedStreamError(IPCError):
    """A correctly framed IPC stream whose contents do not decode (the next stream can still be read)."""


class ExternalLocationError(ProtocolError, RuntimeError):
    """A pointer batch's object could not be used (URL refused, fetch failed, missing, too big, corrupt).

    The URL policy refused it, the fetch failed, or the object is missing, too big, truncated,
    does not decode, or does not match its SHA-256. Raised where the pointer is resolved (the
    client for results; the server for inputs, where it becomes an error reply); the connection
    stays usable. 0.52.2 raises a plain ``RuntimeError`` here, so this is one too, with
    ``error_type`` ``"RuntimeError"``.
    """

    ERROR_TYPE = "RuntimeError"
