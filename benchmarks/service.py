"""The benchmark service: written against the API both vgi_rpc implementations share."""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from vgi_rpc import (
    AnnotatedBatch,
    ArrowSerializableDataclass,
    CallContext,
    ExchangeState,
    OutputCollector,
    ProducerState,
    Stream,
)

_BULK_SCHEMA = pa.schema([pa.field("i", pa.int64()), pa.field("f", pa.float64())])
_BATCHES: dict[int, Any] = {}


def bulk_batch(rows: int) -> Any:
    batch = _BATCHES.get(rows)
    if batch is None:
        ints = pa.array(range(rows), pa.int64())
        batch = _BATCHES[rows] = pa.RecordBatch.from_arrays([ints, ints.cast(pa.float64())], schema=_BULK_SCHEMA)
    return batch


@dataclass
class BulkState(ProducerState):
    """Emits the same prebuilt batch ``batches`` times (no per-row Python)."""

    batches: int
    rows: int
    done: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.done >= self.batches:
            out.finish()
            return
        out.emit(bulk_batch(self.rows))
        self.done += 1


@dataclass
class EchoState(ExchangeState):
    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        out.emit(input.batch)


_SINK_SCHEMA = pa.schema([pa.field("rows", pa.int64())])


@dataclass
class SinkState(ExchangeState):
    """Takes each input batch and answers with its row count (an upload benchmark)."""

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        out.emit_pydict({"rows": [input.batch.num_rows]})


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


@dataclass(frozen=True)
class Rect(ArrowSerializableDataclass):
    """A record argument: a dataclass of scalars and a string."""

    x: float
    y: float
    width: float
    height: float
    label: str


class Bench(Protocol):
    """Calls whose cost is dominated by the framework, not the work."""

    def noop(self) -> None: ...

    def add(self, a: float, b: float) -> float: ...

    def greet(self, name: str) -> str: ...

    def mixed(self, color: Color, counts: dict[str, int], ids: frozenset[int]) -> int: ...

    def area(self, rect: Rect) -> float: ...

    def total(self, values: list[int]) -> int: ...

    def echo_bytes(self, data: bytes) -> bytes: ...

    def bulk(self, batches: int, rows: int) -> Stream[ProducerState]: ...

    def echo(self) -> Stream[ExchangeState]: ...

    def sink(self) -> Stream[ExchangeState]: ...


class BenchImpl:
    def noop(self) -> None:
        return None

    def add(self, a: float, b: float) -> float:
        return a + b

    def greet(self, name: str) -> str:
        return f"Hello, {name}!"

    def mixed(self, color: Color, counts: dict[str, int], ids: frozenset[int]) -> int:
        return len(color.value) + sum(counts.values()) + len(ids)

    def area(self, rect: Rect) -> float:
        return rect.width * rect.height

    def total(self, values: list[int]) -> int:
        return sum(values)

    def echo_bytes(self, data: bytes) -> bytes:
        return data

    def bulk(self, batches: int, rows: int) -> Stream[BulkState]:
        return Stream(output_schema=_BULK_SCHEMA, state=BulkState(batches, rows))

    def sink(self) -> Stream[SinkState]:
        return Stream(output_schema=_SINK_SCHEMA, state=SinkState(), input_schema=_BULK_SCHEMA)

    def echo(self) -> Stream[EchoState]:
        schema = pa.schema([pa.field("v", pa.int64())])
        return Stream(output_schema=schema, state=EchoState(), input_schema=schema)


# --- the client side of the workloads (every benchmark client, under either implementation) ---

# unary workloads: name -> (method, keyword arguments)
UNARY_CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "noop": ("noop", {}),
    "add": ("add", {"a": 1.5, "b": 2.25}),
    "greet": ("greet", {"name": "world"}),
    "mixed": ("mixed", {"color": Color.GREEN, "counts": {"a": 1, "b": 2, "c": 3}, "ids": frozenset({1, 2, 3, 4})}),
    "record": ("area", {"rect": Rect(x=1.0, y=2.0, width=3.0, height=4.0, label="box")}),
    "list": ("total", {"values": list(range(16))}),
}


def call_unary(proxy: Bench, name: str) -> None:
    method, kwargs = UNARY_CALLS[name]
    getattr(proxy, method)(**kwargs)


def download(proxy: Bench, batches: int, rows: int) -> int:
    """Drain a producer of ``batches`` batches of ``rows`` rows; returns the bytes received."""
    return sum(b.batch.nbytes for b in proxy.bulk(batches=batches, rows=rows))


def exchange_rounds(proxy: Bench, rounds: int) -> None:
    """An exchange of ``rounds`` lock-step rounds of a three-row batch."""
    batch = AnnotatedBatch.from_pydict({"v": [1, 2, 3]})
    with proxy.echo() as session:
        for _ in range(rounds):
            session.exchange(batch)


def upload(proxy: Bench, batch: Any, batches: int) -> int:
    """Send ``batch`` ``batches`` times through the sink exchange; returns the bytes sent."""
    item = AnnotatedBatch(batch)
    with proxy.sink() as session:
        for _ in range(batches):
            session.exchange(item)
    return int(batches * batch.nbytes)


if __name__ == "__main__":
    # worker entry point; the repository root goes at the END of sys.path so that under the
    # reference interpreter (python -I) the installed reference vgi_rpc is the one imported
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import vgi_rpc

    if os.environ.get("VGI_BENCH_OBSERVER") == "access-log":  # ours only: benchmarks/observer_cost.py
        from vgi_rpc.access_log import AccessLog

        server = vgi_rpc.RpcServer(Bench, BenchImpl())
        AccessLog().attach(server)  # the vgi_rpc.access logger only, which is off
        vgi_rpc.run_server(server)
    else:
        vgi_rpc.run_server(Bench, BenchImpl())
