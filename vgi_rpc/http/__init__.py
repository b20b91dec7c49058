"""HTTP transport: ``make_wsgi_app`` (Falcon) and ``http_connect`` (httpx), over the same core.

Needs the ``http`` extra (``falcon``, ``httpx``, ``zstandard``); those are imported only when
these names are used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ahttp_connect", "http_connect", "http_introspect", "make_asgi_app", "make_wsgi_app"]


_LAZY = {
    "make_wsgi_app": "server",
    "http_connect": "client",
    "http_introspect": "client",
    "make_asgi_app": "asgi",
    "ahttp_connect": "aclient",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:  # imported on first use: falcon and httpx are optional
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module 'vgi_rpc.http' has no attribute {name!r}")
