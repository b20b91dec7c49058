"""Our implementation of the conformance service, written from its documented behaviour."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import AnnotatedBatch, CallContext, ExchangeState, Level, OutputCollector, ProducerState, Stream, StreamState
from ._types import (
    ANNOTATED_EMIT_LABEL,
    INPUT_METADATA_KEY,
    TICK_METADATA_KEY,
    AllTypes,
    BoundingBox,
    ConformanceHeader,
    ContainerWideTypes,
    DeepNested,
    EmbeddedArrow,
    NestedContainers,
    Point,
    RichHeader,
    Status,
    WideTypes,
    build_dynamic_schema,
    build_rich_header,
)

INDEX_VALUE = pa.schema([pa.field("index", pa.int64()), pa.field("value", pa.int64())])
FLOAT_VALUE = pa.schema([pa.field("value", pa.float64())])
INT_VALUE = pa.schema([pa.field("value", pa.int64())])


def _rows(start: int, count: int) -> dict[str, list[int]]:
    """``count`` rows of ``{index, value = index * 10}`` from ``start``."""
    index = list(range(start, start + count))
    return {"index": index, "value": [i * 10 for i in index]}


class _Probe:
    """Process-wide counters the cancellation tests read back over the wire."""

    counts = {"produce": 0, "exchange": 0, "on_cancel": 0}

    @classmethod
    def bump(cls, name: str) -> None:
        cls.counts[name] += 1


# -- producer states ------------------------------------------------------------------------------


@dataclass
class Counting(ProducerState):
    """Emits ``batches`` batches of ``rows`` rows of {index, value}, then finishes."""

    batches: int
    rows: int = 1
    log_each: bool = False
    done: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.done >= self.batches:
            out.finish()
            return
        if self.log_each:
            out.client_log(Level.INFO, f"producing batch {self.done}")
        out.emit_pydict(_rows(self.done * self.rows, self.rows))
        self.done += 1


@dataclass
class TickEcho(StreamState):
    """Reports the application metadata each tick carried."""

    count: int
    seen: int = 0

    def process(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        md = input.custom_metadata
        raw = md.get(TICK_METADATA_KEY) if md is not None else None
        out.emit_pydict({"index": [self.seen], "seen": [raw.decode("utf-8", "replace") if raw else ""]})
        self.seen += 1
        if self.seen >= self.count:
            out.finish()


@dataclass
class Annotated(ProducerState):
    """Each batch carries its own index in its metadata."""

    count: int
    rows: int
    done: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.done >= self.count:
            out.finish()
            return
        base = self.done * 1_000_000
        metadata = {
            "conformance.batch_index": str(self.done),
            "conformance.batch_total": str(self.count),
            "conformance.emit_label": ANNOTATED_EMIT_LABEL,
        }
        out.emit_pydict({"value": [base + r for r in range(self.rows)]}, metadata=metadata)
        self.done += 1


@dataclass
class FailAfter(ProducerState):
    """Emits ``good`` batches, then raises."""

    good: int
    done: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.done >= self.good:
            raise RuntimeError(f"intentional error after {self.good} batches")
        out.emit_pydict(_rows(self.done, 1))
        self.done += 1


@dataclass
class Endless(ProducerState):
    """Never finishes; counts its calls and its cancellation."""

    done: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        _Probe.bump("produce")
        out.emit_pydict(_rows(self.done, 1))
        self.done += 1

    def on_cancel(self, ctx: CallContext) -> None:
        _Probe.bump("on_cancel")


@dataclass
class Dynamic(ProducerState):
    """Rows whose columns depend on the call's flags."""

    count: int
    strings: bool
    floats: bool
    done: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.done >= self.count:
            out.finish()
            return
        row: dict[str, list[Any]] = {"index": [self.done]}
        if self.strings:
            row["label"] = [f"row-{self.done}"]
        if self.floats:
            row["score"] = [self.done * 1.5]
        out.emit_pydict(row)
        self.done += 1


# -- exchange states ------------------------------------------------------------------------------


@dataclass
class Scale(ExchangeState):
    factor: float

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        out.emit_arrays([pc.multiply(input.batch.column("value"), self.factor)])


@dataclass
class Accumulate(ExchangeState):
    running_sum: float = 0.0
    exchange_count: int = 0

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        total = pc.sum(input.batch.column("value")).as_py()
        self.running_sum += total or 0.0
        self.exchange_count += 1
        out.emit_pydict({"running_sum": [self.running_sum], "exchange_count": [self.exchange_count]})


@dataclass
class Echo(ExchangeState):
    """Echoes each input; optionally logs, fails on the n-th input, or counts for the cancel probe."""

    log: bool = False
    fail_on: int = 0
    probe: bool = False
    seen: int = 0

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        self.seen += 1
        if self.probe:
            _Probe.bump("exchange")
        if self.fail_on and self.seen >= self.fail_on:
            raise RuntimeError(f"intentional error on exchange {self.seen}")
        if self.log:
            out.client_log(Level.INFO, f"exchange {self.seen}")
            out.client_log(Level.DEBUG, f"exchange {self.seen} has {input.batch.num_rows} rows")
        out.emit(input.batch)

    def on_cancel(self, ctx: CallContext) -> None:
        if self.probe:
            _Probe.bump("on_cancel")


@dataclass
class MetadataReport(ExchangeState):
    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        md = input.custom_metadata
        raw = md.get(INPUT_METADATA_KEY) if md is not None else None
        keys = ",".join(sorted(k.decode("utf-8", "replace") for k in md)) if md is not None else ""
        out.emit_pydict({"seen": [raw.decode("utf-8", "replace") if raw else ""], "keys": [keys]})


@dataclass
class ZeroColumns(ExchangeState):
    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        out.emit(pa.RecordBatch.from_pydict({}, schema=pa.schema([])))


@dataclass
class Oversized(ExchangeState):
    rows: int

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        out.emit_pydict(_rows(0, self.rows))


@dataclass
class _Unsupported(ProducerState):
    reason: str = field(default="")

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        raise RuntimeError(self.reason)


_STICKY = "sticky sessions are not supported by this server"


class ConformanceServiceImpl:
    """Implements every method of :class:`ConformanceService`."""

    # scalar echo
    def echo_string(self, value: str) -> str:
        return value

    def echo_bytes(self, data: bytes) -> bytes:
        return data

    def oversized_unary(self, target_bytes: int) -> bytes:
        return b"x" * max(0, target_bytes)

    def published_string(self, value: str, include_sha256: bool) -> str:
        raise RuntimeError("published_string requires external storage")

    def echo_int(self, value: int) -> int:
        return value

    def echo_float(self, value: float) -> float:
        return value

    def echo_bool(self, value: bool) -> bool:
        return value

    # void
    def void_noop(self) -> None:
        return None

    def void_with_param(self, value: int) -> None:
        return None

    # complex types
    def echo_enum(self, status: Status) -> Status:
        return status

    def echo_list(self, values: list[str]) -> list[str]:
        return values

    def echo_dict(self, mapping: dict[str, int]) -> dict[str, int]:
        return mapping

    def echo_nested_list(self, matrix: list[list[int]]) -> list[list[int]]:
        return matrix

    # optional
    def echo_optional_string(self, value: str | None) -> str | None:
        return value

    def echo_optional_int(self, value: int | None) -> int | None:
        return value

    def echo_optional_point(self, point: Point | None) -> Point | None:
        return point

    def echo_annotated_optional_int(self, value: int | None) -> int | None:
        return value

    def echo_outer_optional_non_null(self, value: int | None) -> int | None:
        return value

    # dataclasses
    def echo_point(self, point: Point) -> Point:
        return point

    def echo_all_types(self, data: AllTypes) -> AllTypes:
        return data

    def echo_bounding_box(self, box: BoundingBox) -> BoundingBox:
        return box

    def inspect_point(self, point: Point) -> str:
        return f"Point({point.x}, {point.y})"

    # annotated and wide types: echo
    def echo_int32(self, value: int) -> int:
        return value

    def echo_float32(self, value: float) -> float:
        return value

    def echo_int8(self, value: int) -> int:
        return value

    def echo_int16(self, value: int) -> int:
        return value

    def echo_uint8(self, value: int) -> int:
        return value

    def echo_uint16(self, value: int) -> int:
        return value

    def echo_uint32(self, value: int) -> int:
        return value

    def echo_uint64(self, value: int) -> int:
        return value

    def echo_date(self, value: _dt.date) -> _dt.date:
        return value

    def echo_timestamp(self, value: _dt.datetime) -> _dt.datetime:
        return value

    def echo_timestamp_utc(self, value: _dt.datetime) -> _dt.datetime:
        return value

    def echo_time(self, value: _dt.time) -> _dt.time:
        return value

    def echo_duration(self, value: _dt.timedelta) -> _dt.timedelta:
        return value

    def echo_decimal(self, value: Decimal) -> Decimal:
        return value

    def echo_large_string(self, value: str) -> str:
        return value

    def echo_large_binary(self, value: bytes) -> bytes:
        return value

    def echo_fixed_binary(self, value: bytes) -> bytes:
        return value

    def echo_wide_types(self, data: WideTypes) -> WideTypes:
        return data

    def echo_container_wide_types(self, data: ContainerWideTypes) -> ContainerWideTypes:
        return data

    def echo_embedded_arrow(self, data: EmbeddedArrow) -> EmbeddedArrow:
        return data

    def echo_deep_nested(self, data: DeepNested) -> DeepNested:
        return data

    def pack_nested_containers(
        self, statuses: list[Status], points: list[Point], status_by_name: dict[str, Status]
    ) -> NestedContainers:
        return NestedContainers(
            statuses=statuses,
            points=points,
            status_by_name=status_by_name,
            frozen_statuses=frozenset(statuses),
            tagged_status=statuses[0] if statuses else None,
            tagged_point=points[0] if points else None,
            tagged_batch=pa.RecordBatch.from_pydict({"value": pa.array([1, 2], pa.int64())}),
        )

    def echo_status_list(self, statuses: list[Status]) -> list[Status]:
        return statuses

    def echo_dict_encoded_string(self, value: str) -> str:
        return value

    # parameters and defaults
    def add_floats(self, a: float, b: float) -> float:
        return a + b

    def concatenate(self, prefix: str, suffix: str, separator: str = "-") -> str:
        return f"{prefix}{separator}{suffix}"

    def with_defaults(self, required: int, optional_str: str = "default", optional_int: int = 42) -> str:
        return f"required={required}, optional_str={optional_str}, optional_int={optional_int}"

    # errors
    def raise_value_error(self, message: str) -> str:
        raise ValueError(message)

    def raise_runtime_error(self, message: str) -> str:
        raise RuntimeError(message)

    def raise_type_error(self, message: str) -> str:
        raise TypeError(message)

    # client-directed logs
    def echo_with_info_log(self, value: str, ctx: CallContext) -> str:
        ctx.client_log(Level.INFO, f"info: {value}")
        return value

    def echo_with_multi_logs(self, value: str, ctx: CallContext) -> str:
        for level in (Level.DEBUG, Level.INFO, Level.WARN):
            ctx.client_log(level, f"{level.value.lower()}: {value}")
        return value

    def echo_with_log_extras(self, value: str, ctx: CallContext) -> str:
        ctx.client_log(Level.INFO, f"info: {value}", source="conformance", detail=value)
        return value

    def echo_with_all_log_levels(self, value: str, ctx: CallContext) -> str:
        for level in (Level.TRACE, Level.DEBUG, Level.INFO, Level.WARN, Level.ERROR):
            ctx.client_log(level, f"{level.value.lower()}: {value}")
        return value

    # producer streams
    def produce_n(self, count: int) -> Stream[Counting]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(count))

    def produce_tick_metadata(self, count: int) -> Stream[TickEcho]:
        schema = pa.schema([pa.field("index", pa.int64()), pa.field("seen", pa.utf8())])
        return Stream(output_schema=schema, state=TickEcho(count))

    def produce_empty(self) -> Stream[Counting]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(0))

    def produce_single(self) -> Stream[Counting]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(1))

    def produce_large_batches(self, rows_per_batch: int, batch_count: int) -> Stream[Counting]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(batch_count, rows_per_batch))

    def produce_annotated_batches(self, count: int, rows_per_batch: int) -> Stream[Annotated]:
        return Stream(output_schema=INT_VALUE, state=Annotated(count, rows_per_batch))

    def produce_with_logs(self, count: int) -> Stream[Counting]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(count, log_each=True))

    def produce_error_mid_stream(self, emit_before_error: int) -> Stream[FailAfter]:
        return Stream(output_schema=INDEX_VALUE, state=FailAfter(emit_before_error))

    def produce_error_on_init(self) -> Stream[Counting]:
        raise RuntimeError("intentional error during stream initialization")

    def produce_oversized_batch(self, rows_per_batch: int) -> Stream[Counting]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(1, rows_per_batch))

    def produce_with_header(self, count: int) -> Stream[Counting, ConformanceHeader]:
        header = ConformanceHeader(total_expected=count, description=f"producing {count} batches")
        return Stream(output_schema=INDEX_VALUE, state=Counting(count), header=header)

    def produce_with_header_and_logs(self, count: int, ctx: CallContext) -> Stream[Counting, ConformanceHeader]:
        ctx.client_log(Level.INFO, "stream init log")
        header = ConformanceHeader(total_expected=count, description=f"producing {count} with logs")
        return Stream(output_schema=INDEX_VALUE, state=Counting(count), header=header)

    # exchange streams
    def exchange_scale(self, factor: float) -> Stream[Scale]:
        return Stream(output_schema=FLOAT_VALUE, state=Scale(factor), input_schema=FLOAT_VALUE)

    def exchange_accumulate(self) -> Stream[Accumulate]:
        schema = pa.schema([pa.field("running_sum", pa.float64()), pa.field("exchange_count", pa.int64())])
        return Stream(output_schema=schema, state=Accumulate(), input_schema=FLOAT_VALUE)

    def exchange_with_logs(self) -> Stream[Echo]:
        return Stream(output_schema=FLOAT_VALUE, state=Echo(log=True), input_schema=FLOAT_VALUE)

    def exchange_error_on_nth(self, fail_on: int) -> Stream[Echo]:
        return Stream(output_schema=FLOAT_VALUE, state=Echo(fail_on=fail_on), input_schema=FLOAT_VALUE)

    def exchange_zero_columns(self) -> Stream[ZeroColumns]:
        return Stream(output_schema=pa.schema([]), state=ZeroColumns(), input_schema=pa.schema([]))

    def exchange_input_metadata(self) -> Stream[MetadataReport]:
        schema = pa.schema([pa.field("seen", pa.utf8()), pa.field("keys", pa.utf8())])
        return Stream(output_schema=schema, state=MetadataReport(), input_schema=FLOAT_VALUE)

    def exchange_error_on_init(self) -> Stream[Echo]:
        raise RuntimeError("intentional error during exchange initialization")

    def exchange_oversized(self, rows_per_batch: int) -> Stream[Oversized]:
        return Stream(output_schema=INDEX_VALUE, state=Oversized(rows_per_batch), input_schema=FLOAT_VALUE)

    def exchange_with_header(self, factor: float) -> Stream[Scale, ConformanceHeader]:
        header = ConformanceHeader(total_expected=0, description=f"scale by {factor}")
        return Stream(output_schema=FLOAT_VALUE, state=Scale(factor), input_schema=FLOAT_VALUE, header=header)

    # cancellation
    def cancellable_producer(self) -> Stream[Endless]:
        return Stream(output_schema=INDEX_VALUE, state=Endless())

    def cancellable_exchange(self) -> Stream[Echo]:
        return Stream(output_schema=FLOAT_VALUE, state=Echo(probe=True), input_schema=FLOAT_VALUE)

    def cancel_probe_counters(self) -> list[int]:
        c = _Probe.counts
        return [c["produce"], c["exchange"], c["on_cancel"]]

    def reset_cancel_probe(self) -> None:
        for key in _Probe.counts:
            _Probe.counts[key] = 0

    # rich headers and dynamic schemas
    def produce_with_rich_header(self, seed: int, count: int) -> Stream[Counting, RichHeader]:
        return Stream(output_schema=INDEX_VALUE, state=Counting(count), header=build_rich_header(seed))

    def produce_dynamic_schema(
        self, seed: int, count: int, include_strings: bool, include_floats: bool
    ) -> Stream[Dynamic, RichHeader]:
        schema = build_dynamic_schema(include_strings, include_floats)
        state = Dynamic(count, include_strings, include_floats)
        return Stream(output_schema=schema, state=state, header=build_rich_header(seed))

    def exchange_cast_compatible(self) -> Stream[Echo]:
        return Stream(output_schema=FLOAT_VALUE, state=Echo(), input_schema=FLOAT_VALUE)

    def exchange_with_rich_header(self, seed: int, factor: float) -> Stream[Scale, RichHeader]:
        return Stream(
            output_schema=FLOAT_VALUE, state=Scale(factor), input_schema=FLOAT_VALUE, header=build_rich_header(seed)
        )

    # sticky sessions: not supported here
    def open_counter(self, initial: int) -> int:
        raise RuntimeError(_STICKY)

    def increment_counter(self, by: int) -> int:
        raise RuntimeError(_STICKY)

    def close_counter(self) -> int:
        raise RuntimeError(_STICKY)

    def stream_session_counter(self, count: int) -> Stream[_Unsupported]:
        raise RuntimeError(_STICKY)

    def exchange_session_counter(self) -> Stream[_Unsupported]:
        raise RuntimeError(_STICKY)
