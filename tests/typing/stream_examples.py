"""The stream examples as a user writes them, type-checked by ``mypy --strict`` and run by pytest.

A countdown producer, a running-sum exchange and a producer with a stream header, called through
the typed proxy: each batch is an ``AnnotatedBatch`` and ``session.header`` the declared header
class. The ``_misuse`` function is never called: its ``type: ignore`` comments fail the check
(``warn_unused_ignores``) the day the stream types fall back to ``Any``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, assert_type

import pyarrow as pa

from vgi_rpc import (
    AnnotatedBatch,
    ArrowSerializableDataclass,
    CallContext,
    ExchangeState,
    OutputCollector,
    ProducerState,
    Stream,
    StreamState,
    serve_pipe,
)

# -- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountHeader(ArrowSerializableDataclass):
    """Sent once, before the first batch."""

    total: int
    label: str


class CountdownService(Protocol):
    """Streams, one producer and one exchange, and a producer with a header."""

    def countdown(self, n: int) -> Stream[StreamState]:
        """Count down from n to 1, one batch per value."""
        ...

    def accumulate(self, initial: float) -> Stream[StreamState]:
        """A running sum of every input batch's ``value`` column."""
        ...

    def countdown_with_header(self, n: int) -> Stream[StreamState, CountHeader]:
        """``countdown`` after a header announcing it."""
        ...


@dataclass
class CountdownState(ProducerState):
    n: int

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.n <= 0:
            out.finish()
            return
        out.emit_pydict({"value": [self.n]})
        self.n -= 1


@dataclass
class SumState(ExchangeState):
    total: float

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        self.total += sum(input.batch.column("value").to_pylist())
        out.emit_pydict({"sum": [self.total]})


COUNT_SCHEMA = pa.schema([pa.field("value", pa.int64())])


class CountdownImpl:
    def countdown(self, n: int) -> Stream[CountdownState]:
        return Stream(output_schema=COUNT_SCHEMA, state=CountdownState(n))

    def accumulate(self, initial: float) -> Stream[SumState]:
        return Stream(
            output_schema=pa.schema([pa.field("sum", pa.float64())]),
            state=SumState(initial),
            input_schema=pa.schema([pa.field("value", pa.float64())]),
        )

    def countdown_with_header(self, n: int) -> Stream[CountdownState, CountHeader]:
        return Stream(output_schema=COUNT_SCHEMA, state=CountdownState(n), header=CountHeader(n, f"{n} to go"))


# -- the client --------------------------------------------------------------------------------


def run_countdown(n: int) -> list[int]:
    """Iterate a producer."""
    values: list[int] = []
    with serve_pipe(CountdownService, CountdownImpl()) as proxy:
        for batch in proxy.countdown(n=n):
            assert_type(batch, AnnotatedBatch)
            values.extend(batch.batch.column("value").to_pylist())
    return values


def run_accumulate(inputs: list[list[float]]) -> list[float]:
    """Send batches to an exchange, one output batch per input batch."""
    sums: list[float] = []
    with (
        serve_pipe(CountdownService, CountdownImpl()) as proxy,
        proxy.accumulate(initial=0.0) as session,
    ):
        assert_type(session.header, None)
        for values in inputs:
            result = session.exchange(AnnotatedBatch.from_pydict({"value": values}))
            assert_type(result, AnnotatedBatch)
            sums.append(result.batch.column("sum")[0].as_py())
        assert_type(session.finished, bool)
    return sums


def run_countdown_with_header(n: int) -> tuple[CountHeader, list[int]]:
    """Read a producer's header, tick it once, then iterate the rest."""
    with (
        serve_pipe(CountdownService, CountdownImpl()) as proxy,
        proxy.countdown_with_header(n=n) as session,
    ):
        header = session.header
        assert_type(header, CountHeader)
        assert_type(session.typed_header, CountHeader)
        first = session.tick()
        assert_type(first, AnnotatedBatch | None)
        values: list[int] = []
        if first is not None:  # None: the producer has already finished
            values.extend(first.batch.column("value").to_pylist())
            for batch in session:
                assert_type(batch, AnnotatedBatch)
                values.extend(batch.batch.column("value").to_pylist())
    return header, values


def _misuse() -> None:  # never called: each line is a type error mypy must report
    with serve_pipe(CountdownService, CountdownImpl()) as proxy:
        proxy.countdown(n="3")  # type: ignore[arg-type]
        with proxy.countdown_with_header(n=3) as session:
            _ = session.header.missing  # type: ignore[attr-defined]
        with proxy.accumulate(initial=0.0) as exchange:
            _ = exchange.exchange(AnnotatedBatch.from_pydict({"value": [1.0]})).missing  # type: ignore[attr-defined]


if __name__ == "__main__":
    print(run_countdown(3))
    print(run_accumulate([[1.0, 2.0], [3.0]]))
    print(run_countdown_with_header(2))
