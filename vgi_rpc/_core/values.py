"""Python values <-> values pyarrow converts natively, driven by a TypeSpec.

Converters are compiled once per TypeSpec into closures; identity conversions compile to None
so hot paths can skip the call entirely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from .ipc import new_writer, open_reader
from .typemap import Kind, TypeSpec

__all__ = ["Converter", "from_arrow", "to_arrow"]

Converter = Callable[[Any], Any]

_TO: dict[TypeSpec, Converter | None] = {}
_FROM: dict[TypeSpec, Converter | None] = {}


def to_arrow(spec: TypeSpec) -> Converter | None:
    """A function turning a Python value of *spec* into what ``pa.array`` accepts (None = identity)."""
    try:
        return _TO[spec]
    except KeyError:
        conv = _TO[spec] = _compile_to(spec)
        return conv


def from_arrow(spec: TypeSpec) -> Converter | None:
    """A function turning ``Scalar.as_py()`` output back into the Python value (None = identity)."""
    try:
        return _FROM[spec]
    except KeyError:
        conv = _FROM[spec] = _compile_from(spec)
        return conv


def _nullsafe(fn: Converter) -> Converter:
    def conv(value: Any) -> Any:
        return None if value is None else fn(value)

    return conv


def _compile_to(spec: TypeSpec) -> Converter | None:  # noqa: C901 - one branch per Kind
    kind = spec.kind
    if kind is Kind.SCALAR:
        return None
    if kind is Kind.ENUM:
        return _nullsafe(lambda v: v if isinstance(v, str) else v.name)
    if kind in (Kind.LIST, Kind.SET):
        item = to_arrow(spec.children[0])
        if item is None:
            return None if kind is Kind.LIST else _nullsafe(list)
        return _nullsafe(lambda v: [item(x) for x in v])
    if kind is Kind.MAP:
        kc, vc = to_arrow(spec.children[0]), to_arrow(spec.children[1])
        kf = kc or (lambda x: x)
        vf = vc or (lambda x: x)
        return _nullsafe(lambda v: [(kf(k), vf(x)) for k, x in v.items()])
    if kind is Kind.STRUCT:
        fields = [(name, to_arrow(child)) for name, child in zip(spec.field_names, spec.children, strict=True)]

        def struct(v: Any) -> dict[str, Any]:
            return {n: (c(getattr(v, n)) if c else getattr(v, n)) for n, c in fields}

        return _nullsafe(struct)
    if kind is Kind.BLOB:
        return _nullsafe(lambda v: v.serialize_to_bytes())
    if kind is Kind.SCHEMA:
        return _nullsafe(lambda v: v.serialize().to_pybytes())
    if kind is Kind.BATCH:
        return _nullsafe(_batch_to_bytes)
    raise AssertionError(kind)


def _compile_from(spec: TypeSpec) -> Converter | None:  # noqa: C901 - one branch per Kind
    kind = spec.kind
    if kind is Kind.SCALAR:
        return None
    if kind is Kind.ENUM:
        cls = spec.py_type
        return _nullsafe(lambda v: cls[v])
    if kind in (Kind.LIST, Kind.SET):
        item = from_arrow(spec.children[0])
        if kind is Kind.LIST:
            return None if item is None else _nullsafe(lambda v: [item(x) for x in v])
        return _nullsafe(frozenset if item is None else (lambda v: frozenset(item(x) for x in v)))
    if kind is Kind.MAP:
        kc, vc = from_arrow(spec.children[0]), from_arrow(spec.children[1])
        kf = kc or (lambda x: x)
        vf = vc or (lambda x: x)
        return _nullsafe(lambda v: {kf(k): vf(x) for k, x in v})
    if kind is Kind.STRUCT:
        cls = spec.py_type
        fields = [(name, from_arrow(child)) for name, child in zip(spec.field_names, spec.children, strict=True)]

        def struct(v: dict[str, Any]) -> Any:
            return cls(**{n: (c(v[n]) if c else v[n]) for n, c in fields})

        return _nullsafe(struct)
    if kind is Kind.BLOB:
        cls = spec.py_type
        return _nullsafe(lambda v: cls.deserialize_from_bytes(v))
    if kind is Kind.SCHEMA:
        return _nullsafe(lambda v: pa.ipc.read_schema(pa.py_buffer(v)))
    if kind is Kind.BATCH:
        return _nullsafe(_batch_from_bytes)
    raise AssertionError(kind)


def _batch_to_bytes(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with new_writer(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def _batch_from_bytes(data: bytes) -> pa.RecordBatch:
    reader = open_reader(pa.py_buffer(data))
    batches = list(reader)
    if len(batches) != 1:
        raise ValueError(f"expected one record batch in an embedded IPC stream, got {len(batches)}")
    return batches[0]
