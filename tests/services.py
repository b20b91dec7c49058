"""Services used by the tests, importable by in-process tests and by worker subprocesses."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, ClassVar, Protocol

import pyarrow as pa

from vgi_rpc import ArrowSerializableDataclass, ArrowType, CallContext, Level


class Calculator(Protocol):
    """Calculator service."""

    def add(self, a: float, b: float) -> float:
        """Add two numbers."""
        ...


class CalculatorImpl:
    """Calculator implementation."""

    def add(self, a: float, b: float) -> float:
        """Add two numbers."""
        return a + b


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclass(frozen=True)
class Point(ArrowSerializableDataclass):
    x: float
    y: float


@dataclass(frozen=True)
class Shape(ArrowSerializableDataclass):
    name: str
    color: Color
    corners: list[Point]
    center: Point | None
    tags: dict[str, int]


class Everything(Protocol):
    """One method per row of the type table, plus defaults, void, errors and logs."""

    protocol_version: ClassVar[str] = "1.2.0"

    def echo_str(self, value: str) -> str: ...
    def echo_bytes(self, value: bytes) -> bytes: ...
    def echo_int(self, value: int) -> int: ...
    def echo_float(self, value: float) -> float: ...
    def echo_bool(self, value: bool) -> bool: ...
    def echo_list(self, value: list[int]) -> list[int]: ...
    def echo_dict(self, value: dict[str, int]) -> dict[str, int]: ...
    def echo_frozenset(self, value: frozenset[int]) -> frozenset[int]: ...
    def echo_enum(self, value: Color) -> Color: ...
    def echo_optional(self, value: str | None) -> str | None: ...
    def echo_point(self, value: Point) -> Point: ...
    def echo_shape(self, value: Shape) -> Shape: ...
    def echo_int32(self, value: Annotated[int, ArrowType(pa.int32())]) -> Annotated[int, ArrowType(pa.int32())]: ...
    def echo_uint64(self, value: Annotated[int, ArrowType(pa.uint64())]) -> Annotated[int, ArrowType(pa.uint64())]: ...
    def echo_date(self, value: Annotated[dt.date, ArrowType(pa.date32())]) -> Annotated[dt.date, ArrowType(pa.date32())]: ...
    def echo_ts(
        self, value: Annotated[dt.datetime, ArrowType(pa.timestamp("us", tz="UTC"))]
    ) -> Annotated[dt.datetime, ArrowType(pa.timestamp("us", tz="UTC"))]: ...
    def echo_decimal(
        self, value: Annotated[Decimal, ArrowType(pa.decimal128(10, 2))]
    ) -> Annotated[Decimal, ArrowType(pa.decimal128(10, 2))]: ...
    def greet(self, name: str, greeting: str = "hello", times: int = 1) -> str: ...
    def noop(self) -> None: ...
    def fail(self, message: str) -> str: ...
    def chatty(self, value: str) -> str: ...


class EverythingImpl:
    def echo_str(self, value: str) -> str:
        return value

    def echo_bytes(self, value: bytes) -> bytes:
        return value

    def echo_int(self, value: int) -> int:
        return value

    def echo_float(self, value: float) -> float:
        return value

    def echo_bool(self, value: bool) -> bool:
        return value

    def echo_list(self, value: list[int]) -> list[int]:
        return value

    def echo_dict(self, value: dict[str, int]) -> dict[str, int]:
        return value

    def echo_frozenset(self, value: frozenset[int]) -> frozenset[int]:
        return value

    def echo_enum(self, value: Color) -> Color:
        return value

    def echo_optional(self, value: str | None) -> str | None:
        return value

    def echo_point(self, value: Point) -> Point:
        return value

    def echo_shape(self, value: Shape) -> Shape:
        return value

    def echo_int32(self, value: int) -> int:
        return value

    def echo_uint64(self, value: int) -> int:
        return value

    def echo_date(self, value: dt.date) -> dt.date:
        return value

    def echo_ts(self, value: dt.datetime) -> dt.datetime:
        return value

    def echo_decimal(self, value: Decimal) -> Decimal:
        return value

    def greet(self, name: str, greeting: str = "hello", times: int = 1) -> str:
        return " ".join([f"{greeting} {name}"] * times)

    def noop(self) -> None:
        return None

    def fail(self, message: str) -> str:
        raise_it(message)
        return ""

    def chatty(self, value: str, ctx: CallContext) -> str:
        ctx.client_log(Level.DEBUG, "first", step="1")
        ctx.client_log(Level.INFO, "second", step="2")
        ctx.client_log(Level.WARN, "third")
        return value.upper()


def raise_it(message: str) -> None:
    raise ValueError(message)
