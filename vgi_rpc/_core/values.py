"""Python values <-> values pyarrow converts natively, driven by a TypeSpec.

Converters are compiled once per TypeSpec into closures; identity conversions compile to None
so hot paths can skip the call entirely.

Enums travel as member NAMES (``dictionary<int16, utf8>``, as in vgi-rpc 0.52.2). Both
directions take a member, a name or a value (0.52.2's server takes a value as well as a name)
and always produce the member (decoding) or its name (encoding); anything else raises
``KeyError`` with the message 0.52.2's server uses, plus the valid names.
"""

from __future__ import annotations

import enum
import reprlib
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

import pyarrow as pa

from .ipc import new_writer, open_reader
from .typemap import Kind, TypeSpec

__all__ = [
    "Converter",
    "enum_member",
    "from_arrow",
    "one_value_array",
    "short_repr",
    "takes_python_type",
    "to_arrow",
]

Converter = Callable[[Any], Any]

_TO: dict[TypeSpec, Converter | None] = {}
_FROM: dict[TypeSpec, Converter | None] = {}

_ZERO_COPY_MIN: Final = 1 << 16  # smaller bytes values are copied (one C++ call is cheaper than three)
_BINARY_OFFSETS: Final = {pa.binary(): "<ii", pa.large_binary(): "<qq"}


def one_value_array(value: Any, arrow_type: pa.DataType) -> pa.Array:
    """A one-row array of *value* (already in wire form); big ``bytes`` are wrapped, not copied."""
    offsets = _BINARY_OFFSETS.get(arrow_type)
    if offsets is not None and type(value) is bytes and len(value) >= _ZERO_COPY_MIN:
        if offsets == "<ii" and len(value) > 0x7FFFFFFF:
            return pa.array([value], type=arrow_type)  # pyarrow's own error: too large for binary
        bounds = pa.py_buffer(struct.pack(offsets, 0, len(value)))
        return pa.Array.from_buffers(arrow_type, 1, [None, bounds, pa.py_buffer(value)])
    return pa.array([value], type=arrow_type)


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
        return _enum_to_name(spec.py_type)
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
        return _enum_from_wire(spec.py_type)
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


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_MAX_NAMES = 20


def short_repr(value: Any) -> str:
    """``repr`` cut to a readable length, for error messages."""
    return _REPR.repr(value)


def enum_member(cls: type[enum.Enum], value: Any) -> enum.Enum:
    """The member of *cls* with name or value *value*; ``KeyError`` naming the valid names if none."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        member = cls.__members__.get(value)
        if member is not None:
            return member
    try:
        member = cls(value)
    except (ValueError, TypeError):
        member = None
    if member is None or member.name not in cls.__members__:  # (a Flag's unnamed combination)
        names = [m.name for m in cls]
        shown = ", ".join(names[:_MAX_NAMES]) + (", ..." if len(names) > _MAX_NAMES else "")
        raise KeyError(f"{_REPR.repr(value)} is not a valid {cls.__name__} name or value; valid: {shown}")
    return member


def _enum_to_name(cls: type[enum.Enum]) -> Converter:
    def conv(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is cls:
            return value.name
        return enum_member(cls, value).name

    return conv


def _enum_from_wire(cls: type[enum.Enum]) -> Converter:
    by_name = dict(cls.__members__)

    def conv(value: Any) -> Any:
        if value is None:
            return None
        member = by_name.get(value) if type(value) is str else None
        return member if member is not None else enum_member(cls, value)

    return conv


def takes_python_type(spec: TypeSpec, value: Any) -> bool:
    """Whether *value*'s own type is one *spec* takes (not its contents); for error messages."""
    kind = spec.kind
    tp = spec.py_type
    if kind is Kind.SCALAR:
        if tp is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if tp is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return not isinstance(tp, type) or isinstance(value, tp)
    if kind is Kind.ENUM:
        return isinstance(value, (tp, str))
    if kind in (Kind.LIST, Kind.SET):
        return isinstance(value, (list, tuple, set, frozenset))
    if kind is Kind.MAP:
        return isinstance(value, Mapping)
    return isinstance(value, tp)


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
