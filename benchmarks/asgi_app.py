"""The Bench service as our ASGI app, for uvicorn (``uvicorn asgi_app:app`` from this directory)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from service import Bench, BenchImpl

import vgi_rpc
from vgi_rpc.aio import make_asgi_app

app = make_asgi_app(
    vgi_rpc.RpcServer(Bench, BenchImpl()), prefix="/vgi", signing_key=b"benchmark-signing-key-0123456789"
)
