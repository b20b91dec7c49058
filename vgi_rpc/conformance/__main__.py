"""Command line of the conformance worker, mirroring the reference ``vgi-rpc-conformance``."""

from __future__ import annotations

import argparse
import sys

import vgi_rpc

from .. import RpcServer, run_server
from ..access_log import AccessLog
from ..worker import add_external_arguments, external_config, serve_http_worker
from . import ConformanceService, ConformanceServiceImpl


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="vgi-rpc-conformance", description="vgi_rpc conformance worker")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--pipe", action="store_true", help="serve on stdin/stdout (default)")
    mode.add_argument("--http", nargs="?", const=0, type=int, metavar="PORT", help="serve over HTTP")
    mode.add_argument("--unix", metavar="PATH", help="serve on a Unix socket")
    mode.add_argument("--tcp", metavar="[HOST:]PORT", help="serve on a TCP socket")
    parser.add_argument("--describe", action="store_true", help="host vgi_rpc.Reflection.v1")
    parser.add_argument("--prefix", default="/vgi", help="URL prefix with --http (default /vgi)")
    parser.add_argument("--max-response-bytes", type=int, metavar="N", help="response body cap with --http")
    parser.add_argument(
        "--max-externalized-response-bytes", type=int, metavar="N", help="cap on externalized batches with --http"
    )
    add_external_arguments(parser)
    parser.add_argument("--access-log", metavar="PATH", help="append JSONL access-log records to PATH")
    parser.add_argument("--whoami-file", metavar="PATH", help="write the path of the vgi_rpc package in use to PATH")
    args = parser.parse_args(argv)
    if args.whoami_file:
        with open(args.whoami_file, "w") as f:
            f.write(str(vgi_rpc.__file__))
    for flag in ("unix", "tcp"):
        if getattr(args, flag) is not None:
            parser.exit(2, f"vgi-rpc-conformance: --{flag} is not supported yet\n")
    access_log = AccessLog(args.access_log) if args.access_log is not None else None
    server = RpcServer(
        ConformanceService,
        ConformanceServiceImpl(),
        enable_describe=args.describe,
        observers=[access_log] if access_log is not None else [],
    )
    if access_log is not None:
        access_log.bind(server)
    external = external_config(args)
    if external is not None:
        server.set_external_location(external)
    if args.http is not None:
        serve_http_worker(server, args)
        sys.exit(0)
    run_server(server, argv=[])  # this command line is parsed above
    sys.exit(0)


if __name__ == "__main__":
    main()
