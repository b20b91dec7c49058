"""Wire types of the conformance service: an enum and dataclasses restating the 0.52.2 interface.

Field names, order and annotations must match the reference exactly, because they are the wire
schema. ``build_rich_header`` and ``build_dynamic_schema`` restate the cross-language value
formulas the conformance runner checks.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Annotated

import pyarrow as pa

from .. import ArrowSerializableDataclass, ArrowType

TICK_METADATA_KEY = b"vgi.conformance.tick"
INPUT_METADATA_KEY = b"vgi.conformance.input"
ANNOTATED_EMIT_LABEL = "\u00fcn\u00efcode-\u03bb"


class Status(Enum):
    """Status enum for conformance testing."""

    PENDING = "pending"
    ACTIVE = "active"
    CLOSED = "closed"


@dataclass(frozen=True)
class Point(ArrowSerializableDataclass):
    """A 2D point."""

    x: float
    y: float


@dataclass(frozen=True)
class BoundingBox(ArrowSerializableDataclass):
    """Two corner points and a label."""

    top_left: Point
    bottom_right: Point
    label: str


@dataclass(frozen=True)
class AllTypes(ArrowSerializableDataclass):
    """One field per container-shaped type mapping."""

    str_field: str
    bytes_field: bytes
    int_field: int
    float_field: float
    bool_field: bool
    list_of_int: list[int]
    list_of_str: list[str]
    dict_field: dict[str, int]
    enum_field: Status
    nested_point: Point
    optional_str: str | None
    optional_int: int | None
    optional_nested: Point | None
    list_of_nested: list[Point]
    annotated_int32: Annotated[int, ArrowType(pa.int32())]
    annotated_float32: Annotated[float, ArrowType(pa.float32())]
    nested_list: list[list[int]]
    dict_str_str: dict[str, str]


@dataclass(frozen=True)
class WideTypes(ArrowSerializableDataclass):
    """One field per Arrow primitive width reachable through ArrowType."""

    int8_field: Annotated[int, ArrowType(pa.int8())]
    int16_field: Annotated[int, ArrowType(pa.int16())]
    int32_field: Annotated[int, ArrowType(pa.int32())]
    uint8_field: Annotated[int, ArrowType(pa.uint8())]
    uint16_field: Annotated[int, ArrowType(pa.uint16())]
    uint32_field: Annotated[int, ArrowType(pa.uint32())]
    uint64_field: Annotated[int, ArrowType(pa.uint64())]
    float32_field: Annotated[float, ArrowType(pa.float32())]
    date_field: Annotated[_dt.date, ArrowType(pa.date32())]
    timestamp_field: Annotated[_dt.datetime, ArrowType(pa.timestamp("us"))]
    timestamp_utc_field: Annotated[_dt.datetime, ArrowType(pa.timestamp("us", tz="UTC"))]
    time_field: Annotated[_dt.time, ArrowType(pa.time64("us"))]
    duration_field: Annotated[_dt.timedelta, ArrowType(pa.duration("us"))]
    decimal_field: Annotated[Decimal, ArrowType(pa.decimal128(20, 4))]
    large_string_field: Annotated[str, ArrowType(pa.large_string())]
    large_binary_field: Annotated[bytes, ArrowType(pa.large_binary())]
    fixed_binary_field: Annotated[bytes, ArrowType(pa.binary(8))]


@dataclass(frozen=True)
class ContainerWideTypes(ArrowSerializableDataclass):
    """Wide types inside list, dict and optional positions."""

    list_decimal: Annotated[list[Decimal], ArrowType(pa.list_(pa.decimal128(20, 4)))]
    list_date: Annotated[list[_dt.date], ArrowType(pa.list_(pa.date32()))]
    list_timestamp: Annotated[list[_dt.datetime], ArrowType(pa.list_(pa.timestamp("us")))]
    optional_date: Annotated[_dt.date | None, ArrowType(pa.date32())]
    optional_decimal: Annotated[Decimal | None, ArrowType(pa.decimal128(20, 4))]
    optional_timestamp: Annotated[_dt.datetime | None, ArrowType(pa.timestamp("us"))]
    dict_str_decimal: Annotated[dict[str, Decimal], ArrowType(pa.map_(pa.string(), pa.decimal128(20, 4)))]
    frozenset_int: frozenset[int]
    list_optional_int: list[int | None]


@dataclass(frozen=True)
class DeepNested(ArrowSerializableDataclass):
    """Multi-level containers and dictionary-encoded strings."""

    list_of_lists_decimal: Annotated[list[list[Decimal]], ArrowType(pa.list_(pa.list_(pa.decimal128(20, 4))))]
    optional_list_date: Annotated[list[_dt.date] | None, ArrowType(pa.list_(pa.date32()))]
    dict_encoded_string: Annotated[str, ArrowType(pa.dictionary(pa.int16(), pa.string()))]
    list_of_dict_encoded: Annotated[list[str], ArrowType(pa.list_(pa.dictionary(pa.int16(), pa.string())))]


@dataclass(frozen=True)
class EmbeddedArrow(ArrowSerializableDataclass):
    """A record batch and a schema carried as nested IPC."""

    batch: pa.RecordBatch
    schema: pa.Schema


@dataclass(frozen=True)
class NestedContainers(ArrowSerializableDataclass):
    """Enums and dataclasses inside containers and annotation wrappers."""

    statuses: list[Status]
    points: list[Point]
    status_by_name: dict[str, Status]
    frozen_statuses: frozenset[Status]
    tagged_status: Annotated[Status, "conformance-tag"] | None
    tagged_point: Annotated[Point, "conformance-tag"] | None
    tagged_batch: Annotated[pa.RecordBatch, ArrowType(pa.binary())] | None


@dataclass(frozen=True)
class ConformanceHeader(ArrowSerializableDataclass):
    """Stream header."""

    total_expected: int
    description: str


@dataclass(frozen=True)
class RichHeader(ArrowSerializableDataclass):
    """Stream header with many types, every value derived from a seed."""

    str_field: str
    bytes_field: bytes
    int_field: int
    float_field: float
    bool_field: bool
    list_of_int: list[int]
    list_of_str: list[str]
    dict_field: dict[str, int]
    enum_field: Status
    nested_point: Point
    optional_str: str | None
    optional_int: int | None
    optional_nested: Point | None
    list_of_nested: list[Point]
    nested_list: list[list[int]]
    annotated_int32: Annotated[int, ArrowType(pa.int32())]
    annotated_float32: Annotated[float, ArrowType(pa.float32())]
    dict_str_str: dict[str, str]


_STATUSES = (Status.PENDING, Status.ACTIVE, Status.CLOSED)


def build_rich_header(seed: int) -> RichHeader:
    """The RichHeader every implementation derives from *seed* (the cross-language formula)."""
    even = seed % 2 == 0
    return RichHeader(
        str_field=f"seed-{seed}",
        bytes_field=bytes((seed + k) % 256 for k in range(3)),
        int_field=seed * 7,
        float_field=seed * 1.5,
        bool_field=even,
        list_of_int=[seed + k for k in range(3)],
        list_of_str=[f"item-{seed + k}" for k in range(2)],
        dict_field={"a": seed, "b": seed + 1},
        enum_field=_STATUSES[seed % 3],
        nested_point=Point(x=float(seed), y=float(seed * 2)),
        optional_str=f"opt-{seed}" if even else None,
        optional_int=None if even else seed * 3,
        optional_nested=Point(x=float(seed), y=0.0) if seed % 3 == 0 else None,
        list_of_nested=[Point(x=float(seed), y=float(seed + 1))],
        nested_list=[[seed, seed + 1], [seed + 2]],
        annotated_int32=seed % 1000,
        annotated_float32=float(seed) / 3.0,
        dict_str_str={"key": f"val-{seed}"},
    )


def build_dynamic_schema(include_strings: bool, include_floats: bool) -> pa.Schema:
    """``index: int64``, plus ``label: utf8`` and ``score: float64`` when asked for."""
    fields = [pa.field("index", pa.int64())]
    if include_strings:
        fields.append(pa.field("label", pa.utf8()))
    if include_floats:
        fields.append(pa.field("score", pa.float64()))
    return pa.schema(fields)
