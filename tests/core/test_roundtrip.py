"""Hypothesis round trips: Python value -> Arrow (via the TypeSpec IR) -> Python value."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vgi_rpc import ArrowSerializableDataclass, ArrowType
from vgi_rpc._core.typemap import resolve
from vgi_rpc._core.values import from_arrow, to_arrow


class Mood(enum.Enum):
    HAPPY = 1
    SAD = 2
    MEH = 3


@dataclass(frozen=True)
class Inner(ArrowSerializableDataclass):
    x: int
    label: str | None


@dataclass(frozen=True)
class Outer(ArrowSerializableDataclass):
    name: str
    mood: Mood
    inner: Inner
    maybe: Inner | None
    items: list[Inner]
    by_key: dict[str, list[int]]
    small: Annotated[int, ArrowType(pa.int16())]
    day: Annotated[dt.date, ArrowType(pa.date32())]
    amount: Annotated[Decimal, ArrowType(pa.decimal128(12, 3))]


i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
text = st.text(max_size=20)
inner = st.builds(Inner, x=i64, label=st.none() | text)
decimals = st.decimals(min_value=-(10**8), max_value=10**8, places=3, allow_nan=False, allow_infinity=False)
outer = st.builds(
    Outer,
    name=text,
    mood=st.sampled_from(Mood),
    inner=inner,
    maybe=st.none() | inner,
    items=st.lists(inner, max_size=4),
    by_key=st.dictionaries(text, st.lists(i64, max_size=3), max_size=3),
    small=st.integers(min_value=-(2**15), max_value=2**15 - 1),
    day=st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    amount=decimals,
)

# (annotation, strategy) for every supported row
ROWS: list[tuple[Any, st.SearchStrategy[Any]]] = [
    (str, text),
    (bytes, st.binary(max_size=20)),
    (int, i64),
    (float, st.floats(allow_nan=False)),
    (bool, st.booleans()),
    (list[int], st.lists(i64, max_size=5)),
    (list[list[str]], st.lists(st.lists(text, max_size=3), max_size=3)),
    (dict[str, int], st.dictionaries(text, i64, max_size=5)),
    (dict[int, list[float]], st.dictionaries(i64, st.lists(st.floats(allow_nan=False), max_size=3), max_size=3)),
    (frozenset[int], st.frozensets(i64, max_size=5)),
    (Mood, st.sampled_from(Mood)),
    (list[Mood], st.lists(st.sampled_from(Mood), max_size=5)),
    (int | None, st.none() | i64),
    (list[int | None], st.lists(st.none() | i64, max_size=5)),
    (Inner, inner),
    (Outer, outer),
    (list[Inner], st.lists(inner, max_size=3)),
    (Annotated[int, ArrowType(pa.uint64())], st.integers(min_value=0, max_value=2**64 - 1)),
    (Annotated[int, ArrowType(pa.int8())], st.integers(min_value=-128, max_value=127)),
    (Annotated[float, ArrowType(pa.float32())], st.sampled_from([0.0, 1.5, -2.25, 1e10])),
    (Annotated[dt.datetime, ArrowType(pa.timestamp("us"))], st.datetimes()),
    (
        Annotated[dt.datetime, ArrowType(pa.timestamp("us", tz="UTC"))],
        st.datetimes(timezones=st.just(dt.UTC)),
    ),
    (Annotated[dt.time, ArrowType(pa.time64("us"))], st.times()),
    (
        Annotated[dt.timedelta, ArrowType(pa.duration("us"))],
        st.timedeltas(min_value=dt.timedelta(days=-9999), max_value=dt.timedelta(days=9999)),
    ),
    (Annotated[Decimal, ArrowType(pa.decimal128(20, 4))], st.decimals(places=4, min_value=-(10**15), max_value=10**15)),
    (Annotated[str, ArrowType(pa.large_string())], text),
    (Annotated[bytes, ArrowType(pa.large_binary())], st.binary(max_size=20)),
    (Annotated[bytes, ArrowType(pa.binary(4))], st.binary(min_size=4, max_size=4)),
    (Annotated[str, ArrowType(pa.dictionary(pa.int16(), pa.string()))], text),
]


def roundtrip(annotation: Any, value: Any) -> Any:
    spec = resolve(annotation)
    enc, dec = to_arrow(spec), from_arrow(spec)
    arrow_value = enc(value) if enc is not None and value is not None else value
    array = pa.array([arrow_value], type=spec.arrow_type)
    batch = pa.RecordBatch.from_arrays([array], schema=pa.schema([spec.field("v")]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    back = pa.ipc.open_stream(sink.getvalue()).read_next_batch()
    out = back.column(0)[0].as_py()
    return dec(out) if dec is not None and out is not None else out


@pytest.mark.parametrize(("annotation", "strategy"), ROWS, ids=[str(a) for a, _ in ROWS])
def test_value_round_trips(annotation: Any, strategy: st.SearchStrategy[Any]) -> None:
    @settings(max_examples=40, deadline=None)
    @given(strategy)
    def check(value: Any) -> None:
        assert roundtrip(annotation, value) == value

    check()


@settings(max_examples=60, deadline=None)
@given(outer)
def test_dataclass_bytes_round_trip(value: Outer) -> None:
    data = value.serialize_to_bytes()
    assert Outer.deserialize_from_bytes(data) == value
    reader = pa.ipc.open_stream(data)
    assert reader.schema.equals(Outer.ARROW_SCHEMA)
    assert reader.read_next_batch().num_rows == 1


def test_unsupported_annotations_name_the_method_and_parameter() -> None:
    from typing import Protocol

    from vgi_rpc import rpc_methods

    class Bad(Protocol):
        def when(self, day: dt.date) -> None: ...

    with pytest.raises(TypeError, match=r"Bad\.when: parameter 'day'"):
        rpc_methods(Bad)

    class BadSet(Protocol):
        def tags(self, values: set[str]) -> None: ...

    with pytest.raises(TypeError, match=r"BadSet\.tags: parameter 'values'"):
        rpc_methods(BadSet)

    class BadReturn(Protocol):
        def pair(self) -> tuple[int, int]: ...

    with pytest.raises(TypeError, match=r"BadReturn\.pair: return type"):
        rpc_methods(BadReturn)


def test_wire_schemas_follow_the_type_table() -> None:
    assert resolve(list[int]).arrow_type == pa.list_(pa.int64())
    assert resolve(dict[str, int]).arrow_type == pa.map_(pa.utf8(), pa.int64())
    assert resolve(Mood).arrow_type == pa.dictionary(pa.int16(), pa.utf8())
    assert resolve(Inner).arrow_type == pa.binary()
    assert resolve(Inner, nested=True).arrow_type == pa.struct(
        [pa.field("x", pa.int64(), nullable=False), pa.field("label", pa.utf8())]
    )
    assert resolve(int | None).nullable
    assert not resolve(Annotated[int, ArrowType(pa.int32(), nullable=False)] | None).nullable
