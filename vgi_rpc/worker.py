"""run_server(): the worker entry point, serving a Protocol on this process's stdin/stdout."""

from __future__ import annotations

import logging
import os
import sys

from .server import RpcServer
from .transports.pipe import PipeTransport

__all__ = ["run_server"]


def run_server(protocol_or_server: type | RpcServer, implementation: object | None = None) -> None:
    """Serve on stdin/stdout until stdin closes.

    stdout carries the protocol, so anything the implementation prints is sent to stderr instead.
    """
    if isinstance(protocol_or_server, RpcServer):
        server = protocol_or_server
    else:
        if implementation is None:
            raise TypeError("run_server(protocol, implementation): the implementation is missing")
        server = RpcServer(protocol_or_server, implementation)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints and C-level writes to fd 1 land on stderr, not in the protocol
    sys.stdout = sys.stderr
    transport = PipeTransport(
        os.fdopen(os.dup(0), "rb", buffering=1 << 16),
        os.fdopen(out_fd, "wb", buffering=0),
    )
    try:
        server.serve(transport)
    finally:
        transport.close()
