"""run_server(): the worker entry point, serving a Protocol on this process's stdin/stdout."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .server import RpcServer
from .transports.pipe import PipeTransport

__all__ = ["http_options", "run_server", "serve_http_worker"]


def http_options(argv: list[str]) -> argparse.Namespace | None:
    """The ``--http`` options in *argv*, or None when the worker serves stdio."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--http", nargs="?", const=0, type=int, default=None)
    parser.add_argument("--prefix", default="/vgi")
    parser.add_argument("--max-response-bytes", type=int, default=None)
    options, _ = parser.parse_known_args(argv)
    return options if options.http is not None else None


def serve_http_worker(server: RpcServer, options: argparse.Namespace) -> None:
    """Serve over HTTP on 127.0.0.1 (falcon needed: the ``http`` extra); print ``PORT:<port>`` when ready."""
    from .http.server import serve_http

    def ready(port: int) -> None:
        print(f"PORT:{port}", flush=True)

    serve_http(
        server, port=options.http, prefix=options.prefix, max_response_bytes=options.max_response_bytes, ready=ready
    )


def run_server(protocol_or_server: type | RpcServer, implementation: object | None = None) -> None:
    """Serve on stdin/stdout until stdin closes, or over HTTP with ``--http [PORT]`` on the command line.

    On stdio, stdout carries the protocol, so anything the implementation prints is sent to stderr
    instead. With ``--http`` (optionally ``--prefix P``, default ``/vgi``, and
    ``--max-response-bytes N``) the worker serves 127.0.0.1, prints ``PORT:<port>`` on stdout
    once it listens, and runs until interrupted. Other arguments are left to the worker script.
    """
    if isinstance(protocol_or_server, RpcServer):
        server = protocol_or_server
    else:
        if implementation is None:
            raise TypeError("run_server(protocol, implementation): the implementation is missing")
        server = RpcServer(protocol_or_server, implementation)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    http = http_options(sys.argv[1:])
    if http is not None:
        serve_http_worker(server, http)
        return
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
