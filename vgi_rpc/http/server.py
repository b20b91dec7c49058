"""``make_wsgi_app``: a Falcon WSGI app over :class:`~vgi_rpc.http.rules.HttpRules`.

This module only adapts: it reads the request (bounded by ``max_request_bytes``), runs the
user's ``authenticate`` hook (a failure is 401 and never reaches the implementation), hands the
request to the rules and writes their response, adding CORS headers when configured. Deploy the
app under any WSGI server (gunicorn, waitress); processes that serve one deployment must share
``signing_key`` so that any of them can continue a stream another one started.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import falcon

from .._core.context import AuthContext
from ..external.config import UploadUrlProvider
from ..external.offload import ExternalOffload
from ..server import RpcServer
from . import wire
from .rules import HttpRequest, HttpResponse, HttpRules
from .token import TokenSealer
from .upload import UploadUrlVendor

__all__ = ["make_wsgi_app", "serve_http"]

_log = logging.getLogger("vgi_rpc.http")
_EXPOSED = ", ".join(
    [
        wire.REQUEST_ID,
        wire.RPC_ERROR,
        wire.VGI_CONTENT_ENCODING,
        wire.CAP_MAX_RESPONSE_SUPPORT,
        wire.CAP_ENCODINGS,
        wire.CAP_EXTERNALIZATION,
        wire.CAP_MAX_REQUEST,
        wire.CAP_MAX_RESPONSE,
        wire.CAP_MAX_EXTERNALIZED,
        wire.CAP_UPLOAD_URL,
        wire.CAP_MAX_UPLOAD,
    ]
)


def make_wsgi_app(
    server: RpcServer,
    *,
    prefix: str = wire.DEFAULT_PREFIX,
    signing_key: bytes | None = None,
    max_stream_response_bytes: int | None = None,
    max_request_bytes: int | None = None,
    authenticate: Callable[[falcon.Request], AuthContext] | None = None,
    cors_origins: str | Sequence[str] | None = None,
    upload_url_provider: UploadUrlProvider | None = None,
    max_upload_bytes: int | None = None,
    token_key: bytes | None = None,
    max_response_bytes: int | None = None,
    token_ttl: float = 3600.0,
    previous_signing_keys: Sequence[bytes] = (),
    max_externalized_response_bytes: int | None = None,
) -> falcon.App[Any, Any]:
    """A Falcon WSGI app serving *server* under *prefix* (see WIRE.md section 8 for the routes).

    Args:
        server: The server to expose.
        prefix: URL prefix of every route (``"/vgi"``; 0.52.2's default is ``""``).
        signing_key: Secret for stream tokens, shared by every process of a deployment (random
            per process when None: streams then only continue in the process that started them).
        max_stream_response_bytes: Hard cap on a response body.
        max_request_bytes: Larger request bodies, encoded or decoded, get 413.
        authenticate: Called with each request (the health route excepted); returns the caller's
            ``AuthContext`` (``ctx.auth``); raising refuses the request with 401.
        cors_origins: ``"*"`` or allowed origins for browser clients.
        upload_url_provider: Vends pre-signed upload / download URL pairs on
            ``POST {prefix}/__upload_url__/init`` (``S3Storage`` and ``GCSStorage`` are providers);
            advertised as ``VGI-Upload-URL-Support: true``.
        max_upload_bytes: Advertised as ``VGI-Max-Upload-Bytes`` (the store enforces sizes).
        token_key: 0.52.2's name for ``signing_key``.
        max_response_bytes: 0.52.2's name for ``max_stream_response_bytes``.
        token_ttl: Seconds a stream token stays valid.
        previous_signing_keys: Keys that still verify tokens during a key rotation (the new
            ``signing_key`` signs); see docs/deploy.md.
        max_externalized_response_bytes: Cap on the buffer size of one result or stream batch
            uploaded to the server's external storage; a bigger one is an error naming this cap
            (nothing is uploaded). Only with ``RpcServer(external_location=...)``, whose offload
            this app then replaces by a capped one.

    """
    caps, vendor = external_http_options(server, max_externalized_response_bytes, upload_url_provider, max_upload_bytes)
    sealer = TokenSealer(signing_key or token_key, ttl=token_ttl, previous_keys=previous_signing_keys)
    rules = HttpRules(
        server.dispatcher,
        sealer_for=lambda auth: sealer.for_principal(auth.principal if auth is not None else None),
        prefix=prefix,
        protocol_name=server.protocol_name,
        max_request_bytes=max_request_bytes,
        max_response_bytes=max_stream_response_bytes if max_stream_response_bytes is not None else max_response_bytes,
        capabilities=caps,
        upload_urls=vendor,
    )
    origins = [cors_origins] if isinstance(cors_origins, str) else list(cors_origins or [])
    app: falcon.App[Any, Any] = falcon.App()
    app.add_sink(_Sink(rules, authenticate, max_request_bytes, origins), prefix="/")
    return app


def external_http_options(
    server: RpcServer,
    max_externalized: int | None,
    upload_url_provider: UploadUrlProvider | None,
    max_upload_bytes: int | None,
) -> tuple[dict[str, str], UploadUrlVendor | None]:
    """The external-storage capabilities and the upload-URL route of an app (WSGI or ASGI)."""
    caps = _external_capabilities(server, max_externalized)
    if upload_url_provider is None:
        if max_upload_bytes is not None:
            raise ValueError("max_upload_bytes needs an upload_url_provider")
        return caps, None
    caps[wire.CAP_UPLOAD_URL] = "true"
    if max_upload_bytes is not None:
        caps[wire.CAP_MAX_UPLOAD] = str(max_upload_bytes)
    return caps, UploadUrlVendor(upload_url_provider, server.dispatcher)


def _external_capabilities(server: RpcServer, max_externalized: int | None) -> dict[str, str]:
    """The externalization headers (WIRE.md 8.3); with a cap, the server's offload becomes a capped one."""
    config = server.external_location
    if config is None or config.storage is None:
        if max_externalized is not None:
            raise ValueError("max_externalized_response_bytes needs RpcServer(external_location=...) with a storage")
        return {wire.CAP_EXTERNALIZATION: "false"}
    caps = {wire.CAP_EXTERNALIZATION: "true"}
    if max_externalized is not None:
        if max_externalized <= 0:
            raise ValueError("max_externalized_response_bytes must be positive")
        server.dispatcher.set_offload(ExternalOffload(config, max_upload_bytes=max_externalized))
        caps[wire.CAP_MAX_EXTERNALIZED] = str(max_externalized)
    return caps


class _Sink:
    """Every request, whatever its path and method, goes through the rules."""

    def __init__(
        self,
        rules: HttpRules,
        authenticate: Callable[[falcon.Request], AuthContext] | None,
        max_request_bytes: int | None,
        origins: list[str],
    ) -> None:
        self.rules = rules
        self.authenticate = authenticate
        self.max_request_bytes = max_request_bytes
        self.origins = origins

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        response = self._handle(req)
        resp.status = response.status
        for name, value in response.headers.items():
            resp.set_header(name, value)
        self._cors(req, resp)
        if response.body:
            resp.data = response.data

    def _handle(self, req: falcon.Request) -> HttpResponse:
        if req.method == "OPTIONS" and self.origins and not self.rules.is_health(req.path):
            return HttpResponse(204, {"Access-Control-Allow-Methods": "POST, GET, HEAD, OPTIONS"})
        limit = self.max_request_bytes
        body = req.bounded_stream.read(limit + 1 if limit is not None else -1) if req.method == "POST" else b""
        auth = None
        if self.authenticate is not None and not self.rules.is_health(req.path):
            try:
                auth = self.authenticate(req)
            except Exception as exc:
                _log.info("authentication refused: %s", exc)
                reason = json.dumps({"error": "unauthorized", "reason": str(exc) or type(exc).__name__})
                return HttpResponse(
                    401, {wire.CONTENT_TYPE: wire.JSON, "WWW-Authenticate": "Bearer"}, [reason.encode()]
                )
        headers = {name.lower(): value for name, value in req.headers.items()}
        return self.rules.handle(HttpRequest(req.method, req.path, headers, body, auth, req.remote_addr or ""))

    def _cors(self, req: falcon.Request, resp: falcon.Response) -> None:
        origin = req.get_header("Origin")
        if not self.origins or origin is None:
            return
        if "*" in self.origins or origin in self.origins:
            resp.set_header("Access-Control-Allow-Origin", "*" if "*" in self.origins else origin)
            resp.set_header("Access-Control-Allow-Headers", "*")
            resp.set_header("Access-Control-Expose-Headers", _EXPOSED)


def serve_http(
    server: RpcServer,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    prefix: str = wire.DEFAULT_PREFIX,
    max_response_bytes: int | None = None,
    signing_key: bytes | None = None,
    ready: Callable[[int], None] | None = None,
    max_externalized_response_bytes: int | None = None,
) -> None:
    """Serve *server* over HTTP with the standard library's threaded WSGI server until interrupted.

    For workers and tests (``run_server``'s ``--http`` mode); deploy under gunicorn or waitress.
    *ready* is called with the bound port (0 picks a free one) before serving.
    """
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class _Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class _Handler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s " + format, self.address_string(), *args)

    app = make_wsgi_app(
        server,
        prefix=prefix,
        max_stream_response_bytes=max_response_bytes,
        signing_key=signing_key,
        max_externalized_response_bytes=max_externalized_response_bytes,
    )
    httpd = make_server(host, port, app, server_class=_Server, handler_class=_Handler)
    try:
        if ready is not None:
            ready(httpd.server_port)
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
