"""The CallObserver seam: dispatch reports one CallRecord per call to each observer.

The access log, statistics and OpenTelemetry are observers; dispatch knows none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .context import AuthContext, CallStatistics

__all__ = ["CallObserver", "CallRecord"]


@dataclass
class CallRecord:
    """What happened in one call (one per HTTP stream turn)."""

    protocol: str
    method: str
    method_type: str  # "unary" | "stream"
    server_id: str
    request_id: str
    auth: AuthContext
    start_ns: int
    duration_ms: float = 0.0
    status: str = "ok"  # "ok" | "error"
    error_type: str = ""
    error_message: str = ""
    error_code: str = ""
    cancelled: bool = False
    stream_id: str = ""
    request_fields: list[tuple[str, str]] = field(default_factory=list)
    request_rows: int = 0
    stats: CallStatistics = field(default_factory=CallStatistics)


class CallObserver(Protocol):
    """Receives one record per call."""

    def on_end(self, record: CallRecord) -> None:
        """Called once when a call ends, successfully or not."""
