"""Our WSGI app for the HTTP tests: ``app`` for gunicorn (``tests.workers.http_app:app``), waitress as __main__.

$VGI_TEST_SERVICE picks the service (everything, streams, calc); $VGI_TEST_SIGNING_KEY is the
stream-token key every worker process shares. ``Authorization: Bearer <name>`` authenticates
as <name>; ``Bearer reject`` is refused (401); no header is anonymous. The cancel counter of
StreamService is kept in a file ($VGI_TEST_COUNTER_FILE) so that all worker processes share it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import falcon

from tests import services
from tests.workers.counters import FileCounters
from vgi_rpc import AuthContext, RpcServer
from vgi_rpc.http import make_wsgi_app


def authenticate(req: falcon.Request) -> AuthContext:
    header = req.get_header("Authorization") or ""
    if not header.startswith("Bearer "):
        return AuthContext.anonymous()
    name = header[len("Bearer ") :]
    if name == "reject":
        raise PermissionError("this bearer token is refused")
    return AuthContext(domain="test", authenticated=True, principal=name)


def build() -> falcon.App:
    if os.environ.get("VGI_TEST_COUNTER_FILE"):
        services.COUNTERS = FileCounters(os.environ["VGI_TEST_COUNTER_FILE"])  # type: ignore[assignment]
    choice = os.environ.get("VGI_TEST_SERVICE", "everything")
    protocol, impl = {
        "everything": (services.Everything, services.EverythingImpl),
        "streams": (services.StreamService, services.StreamServiceImpl),
        "calc": (services.Calculator, services.CalculatorImpl),
    }[choice]
    key = os.environ.get("VGI_TEST_SIGNING_KEY", "").encode() or None
    limit = os.environ.get("VGI_TEST_MAX_REQUEST_BYTES")
    return make_wsgi_app(
        RpcServer(protocol, impl(), enable_describe=True),
        signing_key=key,
        authenticate=authenticate,
        max_request_bytes=int(limit) if limit else None,
        token_ttl=float(os.environ.get("VGI_TEST_TOKEN_TTL", "3600")),
        cors_origins=os.environ.get("VGI_TEST_CORS") or None,
        previous_signing_keys=[k.encode() for k in os.environ.get("VGI_TEST_PREVIOUS_KEYS", "").split(",") if k],
    )


app = build()

if __name__ == "__main__":
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=8)
    print(f"PORT:{server.effective_port}", flush=True)  # type: ignore[union-attr]
    server.run()
