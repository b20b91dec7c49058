"""Semantic bad input gets the typed error batch 0.52.2 sends, and the connection keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from tests.transports.factories import BYTE_STREAM_KINDS, open_raw
from tests.wire import read_stream
from vgi_rpc import PipeTransport

GOOD_MD = {
    b"vgi_rpc.method": b"echo_int",
    b"vgi_rpc.request_version": b"1",
    b"vgi_rpc.protocol": b"Everything",
    b"vgi_rpc.protocol_version": b"1.2.0",
}
INT_SCHEMA = pa.schema([pa.field("value", pa.int64(), nullable=False)])


def _stream(schema: pa.Schema, columns: dict[str, list[Any]] | None, md: dict[bytes, bytes]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        if columns is not None:
            writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=schema), custom_metadata=md)
    return sink.getvalue().to_pybytes()


@pytest.fixture(params=BYTE_STREAM_KINDS)
def raw(request: pytest.FixtureRequest) -> Iterator[PipeTransport]:
    with open_raw(request.param) as transport:
        yield transport


def _call(t: PipeTransport, data: bytes) -> tuple[pa.Schema, list[tuple[pa.RecordBatch, dict[bytes, bytes]]]]:
    t.write(data)
    incoming = read_stream(t)
    assert incoming is not None
    schema, items = incoming
    return schema, [(b, md or {}) for b, md in items]


def _error(t: PipeTransport, data: bytes) -> tuple[pa.Schema, dict[bytes, bytes], dict[str, Any]]:
    schema, items = _call(t, data)
    assert len(items) == 1
    batch, md = items[0]
    assert batch.num_rows == 0
    assert md[b"vgi_rpc.log_level"] == b"EXCEPTION"
    assert len(md[b"vgi_rpc.server_id"]) == 12
    assert len(md[b"vgi_rpc.request_id"]) == 16
    extra = json.loads(md[b"vgi_rpc.log_extra"])
    assert md[b"vgi_rpc.log_message"].decode() == f"{extra['exception_type']}: {extra['exception_message']}"
    assert md[b"vgi_rpc.error_code"].decode() == extra["error_code"]
    # the very next request on the same connection succeeds
    _, ok = _call(t, _stream(INT_SCHEMA, {"value": [41]}, GOOD_MD))
    assert ok[-1][0].to_pydict() == {"result": [41]}
    return schema, md, extra


def _without(key: bytes) -> dict[bytes, bytes]:
    return {k: v for k, v in GOOD_MD.items() if k != key}


RESULT = pa.schema([pa.field("result", pa.int64(), nullable=False)])
EMPTY = pa.schema([])

# (case id, schema, columns, metadata, exception type, error code, error kind, reply schema, message part)
CASES = [
    (
        "missing-method",
        INT_SCHEMA,
        {"value": [1]},
        _without(b"vgi_rpc.method"),
        "ProtocolError",
        "UNKNOWN",
        None,
        EMPTY,
        "vgi_rpc.method",
    ),
    (
        "missing-version",
        INT_SCHEMA,
        {"value": [1]},
        _without(b"vgi_rpc.request_version"),
        "VersionError",
        "UNKNOWN",
        None,
        EMPTY,
        "request_version",
    ),
    (
        "wrong-version",
        INT_SCHEMA,
        {"value": [1]},
        {**GOOD_MD, b"vgi_rpc.request_version": b"2"},
        "VersionError",
        "UNKNOWN",
        None,
        EMPTY,
        "Unsupported request version",
    ),
    (
        "missing-protocol",
        INT_SCHEMA,
        {"value": [1]},
        _without(b"vgi_rpc.protocol"),
        "ProtocolNotSpecifiedError",
        "INVALID_ARGUMENT",
        "protocol_not_specified",
        EMPTY,
        "Everything",
    ),
    (
        "unknown-protocol",
        INT_SCHEMA,
        {"value": [1]},
        {**GOOD_MD, b"vgi_rpc.protocol": b"Nope"},
        "ProtocolNotSupportedError",
        "UNIMPLEMENTED",
        "protocol_not_supported",
        EMPTY,
        "'Nope'",
    ),
    (
        "unknown-method",
        INT_SCHEMA,
        {"value": [1]},
        {**GOOD_MD, b"vgi_rpc.method": b"nope"},
        "MethodNotImplementedError",
        "UNIMPLEMENTED",
        "method_not_implemented",
        EMPTY,
        "'nope'",
    ),
    (
        "retired-describe",
        EMPTY,
        {},
        {**GOOD_MD, b"vgi_rpc.method": b"__describe__"},
        "MethodNotImplementedError",
        "UNIMPLEMENTED",
        "method_not_implemented",
        EMPTY,
        "vgi_rpc.Reflection.v1",
    ),
    (
        "wrong-type",
        pa.schema([pa.field("value", pa.int32(), nullable=False)]),
        {"value": [1]},
        GOOD_MD,
        "TypeError",
        "UNKNOWN",
        None,
        RESULT,
        "expected Arrow type int64",
    ),
    (
        "wrong-nullability",
        pa.schema([pa.field("value", pa.int64(), nullable=True)]),
        {"value": [1]},
        GOOD_MD,
        "TypeError",
        "UNKNOWN",
        None,
        RESULT,
        "nullable=False",
    ),
    (
        "extra-param",
        pa.schema([pa.field("value", pa.int64(), nullable=False), pa.field("x", pa.int64(), nullable=False)]),
        {"value": [1], "x": [2]},
        GOOD_MD,
        "TypeError",
        "UNKNOWN",
        None,
        RESULT,
        "does not declare: x",
    ),
    ("missing-param", EMPTY, {}, GOOD_MD, "TypeError", "UNKNOWN", None, RESULT, "missing required argument"),
    ("two-rows", INT_SCHEMA, {"value": [1, 2]}, GOOD_MD, "ProtocolError", "UNKNOWN", None, EMPTY, "Expected 1 row"),
    ("no-batch", INT_SCHEMA, None, GOOD_MD, "ProtocolError", "UNKNOWN", None, EMPTY, "vgi_rpc.method"),
    (
        "protocol-version-missing",
        INT_SCHEMA,
        {"value": [1]},
        _without(b"vgi_rpc.protocol_version"),
        "ProtocolVersionError",
        "FAILED_PRECONDITION",
        "protocol_version_mismatch",
        RESULT,
        "<not declared>",
    ),
    (
        "protocol-version-major",
        INT_SCHEMA,
        {"value": [1]},
        {**GOOD_MD, b"vgi_rpc.protocol_version": b"2.2.0"},
        "ProtocolVersionError",
        "FAILED_PRECONDITION",
        "protocol_version_mismatch",
        RESULT,
        "2.2.0",
    ),
    (
        "protocol-version-minor",
        INT_SCHEMA,
        {"value": [1]},
        {**GOOD_MD, b"vgi_rpc.protocol_version": b"1.1.9"},
        "ProtocolVersionError",
        "FAILED_PRECONDITION",
        "protocol_version_mismatch",
        RESULT,
        "1.1.9",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_typed_error_and_connection_survives(raw: PipeTransport, case: tuple[Any, ...]) -> None:
    _, schema, columns, md, etype, code, kind, reply_schema, part = case
    got_schema, got_md, extra = _error(raw, _stream(schema, columns, md))
    assert extra["exception_type"] == etype
    assert got_md[b"vgi_rpc.error_code"].decode() == code
    assert got_md.get(b"vgi_rpc.error_kind", b"").decode() == (kind or "")
    assert got_schema.equals(reply_schema)
    assert part in extra["exception_message"]
    if kind == "protocol_version_mismatch":
        details = json.loads(got_md[b"vgi_rpc.error_details"])
        assert details[0]["@type"] == "vgi_rpc.PreconditionFailure"
        assert details[0]["violations"][0]["subject"] == "Everything"


def test_patch_version_difference_is_accepted(raw: PipeTransport) -> None:
    _, items = _call(raw, _stream(INT_SCHEMA, {"value": [9]}, {**GOOD_MD, b"vgi_rpc.protocol_version": b"1.2.7"}))
    assert items[-1][0].to_pydict() == {"result": [9]}


def test_parameterless_request_accepts_zero_or_one_row(raw: PipeTransport) -> None:
    md = {**GOOD_MD, b"vgi_rpc.method": b"noop"}
    for rows in (0, 1):
        batch = pa.RecordBatch.from_struct_array(pa.array([{}] * rows, type=pa.struct([])))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, EMPTY) as w:
            w.write_batch(batch, custom_metadata=md)
        schema, items = _call(raw, sink.getvalue().to_pybytes())
        assert schema.equals(EMPTY)
        assert [(b.num_rows, m) for b, m in items] == [(0, {})]
