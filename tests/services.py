"""Services used by the tests, importable by in-process tests and by worker subprocesses."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, ClassVar, NewType, Protocol

import pyarrow as pa

from vgi_rpc import (
    AnnotatedBatch,
    ArrowSerializableDataclass,
    ArrowType,
    CallContext,
    ExchangeState,
    Level,
    OutputCollector,
    ProducerState,
    Stream,
)


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


UserId = NewType("UserId", int)


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
    def echo_date(
        self, value: Annotated[dt.date, ArrowType(pa.date32())]
    ) -> Annotated[dt.date, ArrowType(pa.date32())]: ...
    def echo_ts(
        self, value: Annotated[dt.datetime, ArrowType(pa.timestamp("us", tz="UTC"))]
    ) -> Annotated[dt.datetime, ArrowType(pa.timestamp("us", tz="UTC"))]: ...
    def echo_decimal(
        self, value: Annotated[Decimal, ArrowType(pa.decimal128(10, 2))]
    ) -> Annotated[Decimal, ArrowType(pa.decimal128(10, 2))]: ...
    def echo_newtype(self, value: UserId) -> UserId: ...
    def greet(self, name: str, greeting: str = "hello", times: int = 1) -> str: ...
    def noop(self) -> None: ...
    def fail(self, message: str) -> str: ...
    def chatty(self, value: str) -> str: ...
    def color_name(self, c: Color) -> str: ...


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

    def echo_newtype(self, value: UserId) -> UserId:
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

    def color_name(self, c: Color) -> str:
        """What the implementation received: 'Color.RED' only for a real member."""
        return f"{type(c).__name__}.{c.name}"


def raise_it(message: str) -> None:
    raise ValueError(message)


# -- streams ------------------------------------------------------------------------------------

_COUNT_SCHEMA = pa.schema([pa.field("i", pa.int64())])


@dataclass
class CountState(ProducerState):
    """Emits 0..n-1 (forever when n < 0), with a log before each batch when chatty."""

    n: int
    chatty: bool = False
    fail_at: int = -1
    i: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.i == self.fail_at:
            raise RuntimeError(f"failed at {self.i}")
        if 0 <= self.n <= self.i:
            out.finish()
            return
        if self.chatty:
            out.client_log(Level.INFO, f"batch {self.i}")
        out.emit_pydict({"i": [self.i]})
        self.i += 1

    def on_cancel(self, ctx: CallContext) -> None:
        COUNTERS["cancelled"] += 1


@dataclass
class SumState(ExchangeState):
    total: float = 0.0

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        for v in input.batch.column("value").to_pylist():
            self.total += v
        out.emit_pydict({"total": [self.total]})


@dataclass
class WideState(ProducerState):
    """A producer whose output schema depends on the call's arguments."""

    columns: int
    done: bool = False

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.done:
            out.finish()
            return
        out.emit_pydict({f"c{k}": [k] for k in range(self.columns)})
        self.done = True


@dataclass
class TickMetaState(ProducerState):
    """Emits each tick's custom metadata as text ("k=v,..."; "" for none), n times."""

    n: int

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:  # unused: process sees the tick
        raise NotImplementedError

    def process(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        if self.n <= 0:
            out.finish()
            return
        self.n -= 1
        md = input.custom_metadata
        text = ",".join(f"{k.decode()}={v.decode()}" for k, v in sorted(md.items())) if md else ""
        out.emit_pydict({"meta": [text]})


@dataclass
class SlowState(ProducerState):
    """Emits 0..n-1, sleeping *delay* seconds before each batch."""

    n: int
    delay: float
    i: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        import time

        if self.i >= self.n:
            out.finish()
            return
        time.sleep(self.delay)
        out.emit_pydict({"i": [self.i]})
        self.i += 1


@dataclass
class PidState(ProducerState):
    """Emits the serving process's id, n times: which process served each turn."""

    n: int
    delay: float = 0.0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        import os
        import time

        if self.n <= 0:
            out.finish()
            return
        self.n -= 1
        time.sleep(self.delay)
        out.emit_pydict({"i": [os.getpid()]})


@dataclass(frozen=True)
class CountHeader(ArrowSerializableDataclass):
    total: int
    label: str


COUNTERS = {"cancelled": 0}


class StreamService(Protocol):
    def count(self, n: int, chatty: bool = False, fail_at: int = -1) -> Stream[ProducerState]: ...
    def count_with_header(self, n: int) -> Stream[ProducerState, CountHeader]: ...
    def running_sum(self) -> Stream[ExchangeState]: ...
    def wide(self, columns: int) -> Stream[ProducerState]: ...
    def broken_start(self) -> Stream[ProducerState]: ...
    def tick_meta(self, n: int) -> Stream[ProducerState]: ...
    def slow_count(self, n: int, delay: float) -> Stream[ProducerState]: ...
    def pids(self, n: int, delay: float = 0.0) -> Stream[ProducerState]: ...
    def whoami(self) -> str: ...
    def secret(self) -> str: ...
    def bump(self) -> int: ...
    def cancelled_count(self) -> int: ...
    def ping(self) -> str: ...
    def crash(self, code: int) -> None: ...
    def sleep(self, seconds: float) -> None: ...


class StreamServiceImpl:
    def count(self, n: int, chatty: bool = False, fail_at: int = -1) -> Stream[CountState]:
        return Stream(output_schema=_COUNT_SCHEMA, state=CountState(n, chatty, fail_at))

    def count_with_header(self, n: int, ctx: CallContext) -> Stream[CountState, CountHeader]:
        ctx.client_log(Level.INFO, "starting")
        return Stream(output_schema=_COUNT_SCHEMA, state=CountState(n), header=CountHeader(n, f"{n} items"))

    def running_sum(self) -> Stream[SumState]:
        return Stream(
            output_schema=pa.schema([pa.field("total", pa.float64())]),
            state=SumState(),
            input_schema=pa.schema([pa.field("value", pa.float64())]),
        )

    def wide(self, columns: int) -> Stream[WideState]:
        schema = pa.schema([pa.field(f"c{k}", pa.int64()) for k in range(columns)])
        return Stream(output_schema=schema, state=WideState(columns))

    def broken_start(self) -> Stream[CountState]:
        raise ValueError("cannot start")

    def tick_meta(self, n: int) -> Stream[TickMetaState]:
        return Stream(output_schema=pa.schema([pa.field("meta", pa.string())]), state=TickMetaState(n))

    def slow_count(self, n: int, delay: float) -> Stream[SlowState]:
        return Stream(output_schema=_COUNT_SCHEMA, state=SlowState(n, delay))

    def pids(self, n: int, delay: float = 0.0) -> Stream[PidState]:
        return Stream(output_schema=_COUNT_SCHEMA, state=PidState(n, delay))

    def whoami(self, ctx: CallContext) -> str:
        return ctx.auth.principal or "anonymous"

    def secret(self, ctx: CallContext) -> str:
        ctx.auth.require_authenticated()
        return f"for {ctx.auth.principal}"

    def bump(self) -> int:
        COUNTERS["bumps"] = COUNTERS.get("bumps", 0) + 1
        return COUNTERS["bumps"]

    def cancelled_count(self) -> int:
        return COUNTERS["cancelled"]

    def ping(self) -> str:
        return "pong"

    def crash(self, code: int) -> None:
        import os

        os._exit(code)

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)


@dataclass
class AsyncCountState(ProducerState):
    """CountState with an ``async def`` process: run on the server's private event loop."""

    n: int
    i: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:  # unused: process is overridden
        raise NotImplementedError

    async def process(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:  # type: ignore[override]
        import asyncio

        await asyncio.sleep(0)
        if self.i >= self.n:
            out.finish()
            return
        out.emit_pydict({"i": [self.i]})
        self.i += 1


class AsyncStreamServiceImpl(StreamServiceImpl):
    """StreamService with ``async def`` methods (unary and stream), on a sync server."""

    async def ping(self) -> str:  # type: ignore[override]
        import asyncio

        await asyncio.sleep(0.001)
        return "pong"

    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        import asyncio

        await asyncio.sleep(seconds)

    async def count(self, n: int, chatty: bool = False, fail_at: int = -1) -> Stream[AsyncCountState]:  # type: ignore[override]
        return Stream(output_schema=_COUNT_SCHEMA, state=AsyncCountState(n))


# -- a service whose methods make its worker fail -------------------------------------------------


class Faults(Protocol):
    def ping(self) -> str: ...
    def sleep(self, seconds: float) -> None: ...
    def exit_now(self, code: int) -> None: ...
    def close_stdout(self) -> None: ...
    def raise_system_exit(self) -> None: ...


class FaultsImpl:
    def ping(self) -> str:
        return "pong"

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)

    def exit_now(self, code: int) -> None:
        import os

        os._exit(code)

    def close_stdout(self) -> None:
        import os
        import time

        os.closerange(1, 2)  # stdout...
        os.closerange(3, 64)  # ...and the protocol's own descriptor (run_server moved it off fd 1)
        time.sleep(1)

    def raise_system_exit(self) -> None:
        raise SystemExit(4)
