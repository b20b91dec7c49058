"""Introspection as 0.52.2 does it: the co-hosted ``vgi_rpc.Reflection.v1`` protocol and protocol hashes.

The protocol hash is the SHA-256 of a canonical JSON description of a protocol's wire surface
(method names, kinds, and every field's name, nullability and type token), so two processes
serving the same Protocol agree on it whatever language they are written in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from .dataclass import ArrowSerializableDataclass
from .keys import PROTOCOL_HASH_PREFIX, REFLECTION_PROTOCOL, REQUEST_VERSION
from .messages import protocol_not_supported
from .service import MethodType, ServiceSpec

__all__ = [
    "DESCRIBE_VERSION",
    "MethodDescription",
    "ServiceDescription",
    "protocol_hash",
    "type_token",
]

DESCRIBE_VERSION = "5"
_HASH_PREFIX = PROTOCOL_HASH_PREFIX


def type_token(t: pa.DataType) -> str:
    """The canonical spelling of an Arrow type in a protocol hash."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        child = t.value_field
        name = "list" if pa.types.is_list(t) else "large_list"
        return f"{name}<item{'?' if child.nullable else ''}:{type_token(child.type)}>"
    if pa.types.is_map(t):
        item = t.item_field
        return f"map<key:{type_token(t.key_type)},value{'?' if item.nullable else ''}:{type_token(item.type)}>"
    if pa.types.is_struct(t):
        inner = ",".join(f"{f.name}{'?' if f.nullable else ''}:{type_token(f.type)}" for f in t)
        return f"struct<{inner}>"
    if pa.types.is_dictionary(t):
        return f"dictionary<index:{type_token(t.index_type)},value:{type_token(t.value_type)}>"
    if pa.types.is_timestamp(t):
        return f"timestamp({t.unit}{',tz=' + t.tz if t.tz else ''})"
    if pa.types.is_decimal(t):
        return f"decimal{t.bit_width}({t.precision},{t.scale})"
    if pa.types.is_time(t) or pa.types.is_duration(t):
        return f"{'time' + str(t.bit_width) if pa.types.is_time(t) else 'duration'}({t.unit})"
    if pa.types.is_fixed_size_binary(t):
        return f"fixed_size_binary({t.byte_width})"
    return _SIMPLE.get(str(t), str(t))


_SIMPLE = {
    "string": "utf8",
    "large_string": "large_utf8",
    "double": "float64",
    "float": "float32",
    "halffloat": "float16",
    "date32[day]": "date32",
    "date64[ms]": "date64",
}


def _fields(schema: pa.Schema) -> list[dict[str, Any]]:
    return [{"name": f.name, "nullable": f.nullable, "type": type_token(f.type)} for f in schema]


def _header_schema(spec: ServiceSpec, name: str) -> pa.Schema | None:
    m = spec.methods[name]
    if m.header_spec is None:
        return None
    schema: pa.Schema = m.header_spec.py_type.ARROW_SCHEMA
    return schema


def protocol_hash(spec: ServiceSpec) -> str:
    """The protocol hash of a service (lowercase hex SHA-256)."""
    methods = []
    for name in sorted(spec.methods):
        m = spec.methods[name]
        header = _header_schema(spec, name)
        entry: dict[str, Any] = {
            "name": name,
            "type": m.info.method_type.value,
            "has_return": m.info.has_return,
            "has_header": header is not None,
            "params": _fields(m.params_schema),
        }
        if m.info.has_return:
            entry["result"] = _fields(m.result_schema)
        if header is not None:
            entry["header"] = _fields(header)
        methods.append(entry)
    import hashlib  # here: a server computes it when introspected, a client when it checks one
    import json

    text = json.dumps(
        {"protocol": spec.name, "methods": methods}, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(_HASH_PREFIX + text.encode()).hexdigest()


# -- the wire dataclasses of vgi_rpc.Reflection.v1 ----------------------------------------------


@dataclass(frozen=True)
class ProtocolSummary(ArrowSerializableDataclass):
    """One hosted protocol, as listed by ``list_protocols``."""

    protocol: str
    protocol_version: str
    protocol_hash: str
    deprecated: bool
    deprecation_message: str
    features: list[str]


@dataclass(frozen=True)
class ProtocolList(ArrowSerializableDataclass):
    """What ``list_protocols`` returns."""

    server_id: str
    server_version: str
    request_version: str
    protocols: list[ProtocolSummary]


@dataclass(frozen=True)
class MethodInfo(ArrowSerializableDataclass):
    """One method of a described protocol; schemas as ``Schema.serialize()`` bytes."""

    name: str
    method_type: str
    has_return: bool
    has_header: bool
    stream_kind: str
    params_schema_ipc: bytes
    result_schema_ipc: bytes
    header_schema_ipc: bytes
    idempotency: str
    deprecated: bool
    deprecation_message: str


@dataclass(frozen=True)
class ProtocolDescription(ArrowSerializableDataclass):
    """What ``describe(protocol)`` returns."""

    protocol: str
    protocol_version: str
    protocol_hash: str
    deprecated: bool
    deprecation_message: str
    features: list[str]
    methods: list[MethodInfo]


class Reflection(Protocol):
    """Runtime introspection, co-hosted by servers built with ``enable_describe=True``."""

    protocol_name: ClassVar[str] = REFLECTION_PROTOCOL
    _vgi_rpc_framework: ClassVar[bool] = True

    def list_protocols(self) -> ProtocolList:
        """The protocols this server hosts."""
        ...

    def describe(self, protocol: str) -> ProtocolDescription:
        """One hosted protocol's methods and schemas."""
        ...


def _schema_bytes(schema: pa.Schema | None) -> bytes:
    return b"" if schema is None else bytes(schema.serialize().to_pybytes())


def summarize(spec: ServiceSpec) -> ProtocolSummary:
    """The ``list_protocols`` entry of a hosted protocol."""
    return ProtocolSummary(spec.name, spec.version or "", protocol_hash(spec), False, "", [])


def describe_spec(spec: ServiceSpec) -> ProtocolDescription:
    """The ``describe`` answer for a hosted protocol."""
    methods = []
    for name in sorted(spec.methods):
        m = spec.methods[name]
        header = _header_schema(spec, name)
        stream = m.info.method_type is MethodType.STREAM
        kind = "" if not stream else {True: "exchange", False: "producer", None: "unknown"}[m.info.is_exchange]
        methods.append(
            MethodInfo(
                name=name,
                method_type=m.info.method_type.value,
                has_return=m.info.has_return,
                has_header=header is not None,
                stream_kind=kind,
                params_schema_ipc=_schema_bytes(m.params_schema),
                result_schema_ipc=_schema_bytes(m.result_schema) if m.info.has_return else b"",
                header_schema_ipc=_schema_bytes(header),
                idempotency="unknown",
                deprecated=False,
                deprecation_message="",
            )
        )
    return ProtocolDescription(spec.name, spec.version or "", protocol_hash(spec), False, "", [], methods)


# -- the client-side view ------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodDescription:
    """One method of an introspected service."""

    name: str
    method_type: MethodType
    has_return: bool
    params_schema: pa.Schema
    result_schema: pa.Schema
    has_header: bool = False
    header_schema: pa.Schema | None = None
    is_exchange: bool | None = None


@dataclass(frozen=True)
class ServiceDescription:
    """A service as described by a server's reflection protocol."""

    protocol_name: str
    request_version: str
    describe_version: str
    protocol_hash: str
    server_id: str
    methods: Mapping[str, MethodDescription]
    protocol_version: str = ""


def _read_schema(data: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(data)) if data else pa.schema([])


def to_service_description(desc: ProtocolDescription, server_id: str) -> ServiceDescription:
    """The public view of a ``describe`` answer."""
    methods = {}
    for m in desc.methods:
        header = _read_schema(m.header_schema_ipc) if m.has_header else None
        methods[m.name] = MethodDescription(
            name=m.name,
            method_type=MethodType(m.method_type),
            has_return=m.has_return,
            params_schema=_read_schema(m.params_schema_ipc),
            result_schema=_read_schema(m.result_schema_ipc),
            has_header=m.has_header,
            header_schema=header,
            is_exchange={"exchange": True, "producer": False}.get(m.stream_kind),
        )
    return ServiceDescription(
        protocol_name=desc.protocol,
        request_version=REQUEST_VERSION,
        describe_version=DESCRIBE_VERSION,
        protocol_hash=desc.protocol_hash,
        server_id=server_id,
        methods=methods,
        protocol_version=desc.protocol_version,
    )


class ReflectionImpl:
    """Serves ``vgi_rpc.Reflection.v1`` for a set of hosted protocols."""

    def __init__(self, specs: list[ServiceSpec], server_id: str, server_version: str = "") -> None:
        self._specs = {s.name: s for s in specs}
        self._server_id = server_id
        self._server_version = server_version

    def list_protocols(self) -> ProtocolList:
        """The protocols this server hosts."""
        summaries = [summarize(self._specs[name]) for name in sorted(self._specs)]
        return ProtocolList(self._server_id, self._server_version, REQUEST_VERSION, summaries)

    def describe(self, protocol: str) -> ProtocolDescription:
        """One hosted protocol's methods and schemas."""
        spec = self._specs.get(protocol)
        if spec is None:
            raise protocol_not_supported(protocol, sorted(self._specs))
        return describe_spec(spec)
