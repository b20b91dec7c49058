"""Our ASGI app for the HTTP tests, served by uvicorn (``tests.workers.asgi_app:app``).

The same services, keys, counters and authentication as ``http_app`` (the WSGI app), through
``make_asgi_app``; $VGI_TEST_PREFIX sets the prefix ("/vgi" by default; "" for 0.52.2's runner).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests import services
from tests.workers.counters import FileCounters
from vgi_rpc import AuthContext, RpcServer
from vgi_rpc.http.asgi import AsgiApp, make_asgi_app
from vgi_rpc.http.rules import HttpRequest


def authenticate(request: HttpRequest) -> AuthContext:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return AuthContext.anonymous()
    name = header[len("Bearer ") :]
    if name == "reject":
        raise PermissionError("this bearer token is refused")
    return AuthContext(domain="test", authenticated=True, principal=name)


def build() -> AsgiApp:
    if os.environ.get("VGI_TEST_COUNTER_FILE"):
        services.COUNTERS = FileCounters(os.environ["VGI_TEST_COUNTER_FILE"])  # type: ignore[assignment]
    choice = os.environ.get("VGI_TEST_SERVICE", "everything")
    describe = True
    if choice == "conformance":  # as the conformance worker's --http mode serves it
        from vgi_rpc.conformance import ConformanceService, ConformanceServiceImpl

        protocol, impl, describe = ConformanceService, ConformanceServiceImpl, False
    else:
        protocol, impl = {
            "everything": (services.Everything, services.EverythingImpl),
            "streams": (services.StreamService, services.StreamServiceImpl),
            "calc": (services.Calculator, services.CalculatorImpl),
            "async": (services.StreamService, services.AsyncStreamServiceImpl),
        }[choice]
    key = os.environ.get("VGI_TEST_SIGNING_KEY", "").encode() or None
    limit = os.environ.get("VGI_TEST_MAX_REQUEST_BYTES")
    cap = os.environ.get("VGI_TEST_MAX_RESPONSE_BYTES")
    return make_asgi_app(
        RpcServer(protocol, impl(), enable_describe=describe),
        max_stream_response_bytes=int(cap) if cap else None,
        prefix=os.environ.get("VGI_TEST_PREFIX", "/vgi"),
        signing_key=key,
        authenticate=authenticate,
        max_request_bytes=int(limit) if limit else None,
        cors_origins=os.environ.get("VGI_TEST_CORS") or None,
        token_ttl=float(os.environ.get("VGI_TEST_TOKEN_TTL", "3600")),
        previous_signing_keys=[k.encode() for k in os.environ.get("VGI_TEST_PREVIOUS_KEYS", "").split(",") if k],
    )


app = build()
