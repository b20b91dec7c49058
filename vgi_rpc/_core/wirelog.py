"""The ``vgi_rpc.wire.*`` debug loggers: what crosses the wire, for targeted debugging.

Six loggers, each turned on on its own (``logging.getLogger("vgi_rpc.wire").setLevel(DEBUG)`` for
all): ``request`` and ``response`` (one line per call on each side), ``batch`` (each batch the
client sorts), ``stream`` (stream starts, steps, ends, cancels), ``transport`` (workers, segments)
and ``http`` (HTTP requests and their status). Every call site asks ``on(LOGGER)`` first, so
they cost one cached level check when off and never format anything.
"""

from __future__ import annotations

import logging
from typing import Final

__all__ = ["BATCH", "HTTP", "REQUEST", "RESPONSE", "STREAM", "TRANSPORT", "on"]

REQUEST: Final = logging.getLogger("vgi_rpc.wire.request")
RESPONSE: Final = logging.getLogger("vgi_rpc.wire.response")
BATCH: Final = logging.getLogger("vgi_rpc.wire.batch")
STREAM: Final = logging.getLogger("vgi_rpc.wire.stream")
TRANSPORT: Final = logging.getLogger("vgi_rpc.wire.transport")
HTTP: Final = logging.getLogger("vgi_rpc.wire.http")


def on(logger: logging.Logger) -> bool:
    """Whether *logger* logs DEBUG now (cached by logging: cheap)."""
    return logger.isEnabledFor(logging.DEBUG)
