"""The floor for async HTTP load: a bare ASGI app that echoes the request body (no framework, no RPC)."""

from __future__ import annotations

from typing import Any

_HEADERS = [(b"content-type", b"application/vnd.apache.arrow.stream")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": body})
