"""Client-side introspection: ask a server's ``vgi_rpc.Reflection.v1`` protocol what it hosts."""

from __future__ import annotations

from ._core.describe import Reflection, ServiceDescription, to_service_description
from ._core.ipc import IpcValidation
from ._core.keys import REFLECTION_PROTOCOL
from ._core.longstream import ByteStream
from .client import Driver, RpcConnection
from .errors import RpcError

__all__ = ["introspect"]


def introspect(
    transport: ByteStream | Driver, ipc_validation: IpcValidation = IpcValidation.FULL, protocol: str | None = None
) -> ServiceDescription:
    """Describe *protocol* (default: the first application protocol) of the server behind *transport*.

    The transport stays open. Raises ``RpcError`` (kind ``protocol_not_supported``) when the server
    does not host reflection (it was started without ``enable_describe``).
    """
    connection = RpcConnection(Reflection, transport, ipc_validation=ipc_validation)
    proxy: Reflection = connection.proxy
    listing = proxy.list_protocols()
    if protocol is None:
        names = [p.protocol for p in listing.protocols if p.protocol != REFLECTION_PROTOCOL]
        if not names:
            raise RpcError("ProtocolNotSupportedError", "the server lists no application protocol", "")
        protocol = names[0]
    return to_service_description(proxy.describe(protocol), listing.server_id)
