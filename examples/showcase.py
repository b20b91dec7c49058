"""A tour of vgi_rpc: one service, served in-process and in a worker subprocess.

Run it with ``./scripts/showcase`` (sets up .venv on first use) or ``python examples/showcase.py``.
"""

from __future__ import annotations

import enum
import sys
import time
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from vgi_rpc import (
    AnnotatedBatch,
    ArrowSerializableDataclass,
    CallContext,
    ExchangeState,
    Level,
    Message,
    OutputCollector,
    ProducerState,
    RpcError,
    Stream,
    connect,
    describe_rpc,
    serve_pipe,
)


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


@dataclass(frozen=True)
class Reading(ArrowSerializableDataclass):
    """One sensor reading; travels as Arrow."""

    sensor: str
    value: float
    unit: Unit
    tags: list[str]


@dataclass
class Countdown(ProducerState):
    n: int

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.n <= 0:
            out.finish()
            return
        out.emit_pydict({"value": [self.n]})
        self.n -= 1


@dataclass
class RunningMean(ExchangeState):
    total: float = 0.0
    count: int = 0

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        values = input.batch.column("value").to_pylist()
        self.total += sum(values)
        self.count += len(values)
        out.emit_pydict({"mean": [self.total / self.count]})


class Weather(Protocol):
    """A small weather service."""

    def add(self, a: float, b: float) -> float:
        """Add two numbers."""
        ...

    def convert(self, reading: Reading, to: Unit) -> Reading:
        """Convert a reading to another unit."""
        ...

    def histogram(self, values: list[float], buckets: dict[str, float]) -> dict[str, int]:
        """Count values at or below each bucket bound."""
        ...

    def explode(self, why: str) -> str:
        """Always fails."""
        ...

    def countdown(self, n: int) -> Stream[ProducerState]:
        """Stream n, n-1, ..., 1."""
        ...

    def mean(self) -> Stream[ExchangeState]:
        """Running mean of the values sent so far."""
        ...


class WeatherImpl:
    def add(self, a: float, b: float) -> float:
        return a + b

    def convert(self, reading: Reading, to: Unit, ctx: CallContext) -> Reading:
        ctx.client_log(Level.INFO, "converting", sensor=reading.sensor)
        if reading.unit == to:
            return reading
        value = reading.value * 9 / 5 + 32 if to is Unit.FAHRENHEIT else (reading.value - 32) * 5 / 9
        return Reading(reading.sensor, round(value, 2), to, [*reading.tags, "converted"])

    def histogram(self, values: list[float], buckets: dict[str, float]) -> dict[str, int]:
        return {name: sum(v <= bound for v in values) for name, bound in buckets.items()}

    def explode(self, why: str) -> str:
        raise ValueError(why)

    def countdown(self, n: int) -> Stream[Countdown]:
        return Stream(output_schema=pa.schema([pa.field("value", pa.int64())]), state=Countdown(n))

    def mean(self) -> Stream[RunningMean]:
        return Stream(
            output_schema=pa.schema([pa.field("mean", pa.float64())]),
            state=RunningMean(),
            input_schema=pa.schema([pa.field("value", pa.float64())]),
        )


def show_log(msg: Message) -> None:
    print(f"    [server log {msg.level.value}] {msg.message} {msg.extra}")


def tour(proxy: Weather) -> None:
    print(f"  add(2, 3) = {proxy.add(a=2.0, b=3.0)}")
    reading = Reading("roof", 21.5, Unit.CELSIUS, ["outdoor"])
    print(f"  convert({reading}) =\n    {proxy.convert(reading=reading, to=Unit.FAHRENHEIT)}")
    print(f"  histogram = {proxy.histogram(values=[1, 5, 7, 12], buckets={'small': 5, 'medium': 10})}")
    try:
        proxy.explode(why="something went wrong")
    except RpcError as err:
        print(
            f"  explode -> RpcError {err.error_type}: {err.error_message} (remote traceback: "
            f"{len(err.remote_traceback.splitlines())} lines)"
        )
    print(f"  countdown(3) -> {[b.batch.column('value')[0].as_py() for b in proxy.countdown(n=3)]}")
    with proxy.mean() as session:
        for chunk in ([1.0, 2.0], [6.0]):
            out = session.exchange(AnnotatedBatch.from_pydict({"value": chunk}))
            print(f"  mean after {chunk} -> {out.batch.column('mean')[0].as_py()}")
    start = time.perf_counter()
    n = 2000
    for _ in range(n):
        proxy.add(a=1.0, b=2.0)
    print(f"  {n} calls of add(): {(time.perf_counter() - start) / n * 1e6:.0f} µs per call")


def main() -> None:
    print(describe_rpc(Weather))
    print("\nIn-process (serve_pipe):")
    with serve_pipe(Weather, WeatherImpl(), on_log=show_log) as proxy:
        tour(proxy)
    print("\nIn a worker subprocess (connect + run_server):")
    with connect(Weather, [sys.executable, __file__, "--worker"], on_log=show_log) as proxy:
        tour(proxy)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        from vgi_rpc import run_server

        run_server(Weather, WeatherImpl())
    else:
        main()
