"""The asyncio API: the same Protocols, core and wire as the sync API, with coroutine methods.

``aconnect`` (a worker process), ``aserve_pipe`` (an in-process pipe) and ``ahttp_connect``
(HTTP, many calls in flight) are async context managers yielding a proxy whose unary methods
are coroutines and whose stream methods return an :class:`AsyncStreamSession`;
``make_asgi_app`` serves an ``RpcServer`` to ASGI servers (uvicorn). The HTTP names need the
``http`` extra (and ``aio`` for aiohttp) and are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .aclient import AsyncRpcConnection as AsyncRpcConnection
from .aclient import AsyncStreamSession as AsyncStreamSession
from .transports.apipe import aserve_pipe as aserve_pipe
from .transports.asubprocess import aconnect as aconnect

if TYPE_CHECKING:
    from .http.aclient import ahttp_connect as ahttp_connect
    from .http.asgi import make_asgi_app as make_asgi_app

__all__ = ["AsyncRpcConnection", "AsyncStreamSession", "aconnect", "ahttp_connect", "aserve_pipe", "make_asgi_app"]

_LAZY = {"ahttp_connect": "vgi_rpc.http.aclient", "make_asgi_app": "vgi_rpc.http.asgi"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'vgi_rpc.aio' has no attribute {name!r}")
