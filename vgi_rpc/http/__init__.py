"""HTTP transport: ``make_wsgi_app`` (Falcon) and ``http_connect`` (httpx), over the same core.

Needs the ``http`` extra (``falcon``, ``httpx``, ``zstandard``); those are imported only when
these names are used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["http_connect", "http_introspect", "make_wsgi_app"]


def __getattr__(name: str) -> Any:
    if name == "make_wsgi_app":
        from .server import make_wsgi_app

        return make_wsgi_app
    if name in ("http_connect", "http_introspect"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'vgi_rpc.http' has no attribute {name!r}")
