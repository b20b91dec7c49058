"""Client-directed log records and the names of the library's loggers."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["LOGGER_ROOT", "Level", "Message", "service_logger_name"]

LOGGER_ROOT: Final = "vgi_rpc"


class Level(enum.Enum):
    """Severity of a log record sent from the server to the client."""

    EXCEPTION = "EXCEPTION"
    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"
    DEBUG = "DEBUG"
    TRACE = "TRACE"


class Message:
    """A log record emitted by the server for the client (``ctx.client_log``)."""

    __slots__ = ("extra", "level", "message")

    def __init__(self, level: Level, message: str, **kwargs: object) -> None:
        self.level = level
        self.message = message
        self.extra: dict[str, object] = kwargs

    def __repr__(self) -> str:
        return f"Message({self.level!r}, {self.message!r}, **{self.extra!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self.level, self.message, self.extra) == (other.level, other.message, other.extra)

    __hash__ = None  # type: ignore[assignment]


def service_logger_name(protocol_name: str) -> str:
    """Name of the logger handed to implementations of *protocol_name* as ``ctx.logger``."""
    return f"{LOGGER_ROOT}.service.{protocol_name}"
