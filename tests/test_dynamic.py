"""The schema-driven call API (vgi_rpc.dynamic) against our conformance worker and the reference's, over a pipe."""

from __future__ import annotations

import datetime
import decimal
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from vgi_rpc import ArgumentError, MethodType, RpcError
from vgi_rpc.dynamic import DynamicClient, decode_blob, dynamic_connect, encode_value

OURS = [sys.executable, "-m", "vgi_rpc.conformance", "--describe"]


@pytest.fixture(params=["ours", pytest.param("reference", marks=pytest.mark.interop)])
def client(request: pytest.FixtureRequest) -> Iterator[DynamicClient]:
    if request.param == "ours":
        cmd = OURS
    else:
        peer: Path = request.getfixturevalue("peer_python")
        cmd = [str(peer.parent / "vgi-rpc-conformance"), "--describe"]
    with dynamic_connect(cmd=cmd) as c:
        yield c


def test_describe(client: DynamicClient) -> None:
    desc = client.describe()
    assert desc.protocol_name == "ConformanceService"
    assert desc.protocol_version == "2.0.0"
    add = desc.methods["add_floats"]
    assert add.method_type is MethodType.UNARY
    assert add.params_schema.names == ["a", "b"]
    assert desc.methods["produce_n"].is_exchange is False
    assert desc.methods["exchange_scale"].is_exchange is True
    assert client.server_id


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("add_floats", {"a": 1, "b": 2.5}, 3.5),
        ("echo_int", {"value": -(2**40)}, -(2**40)),
        ("echo_uint8", {"value": 255}, 255),
        ("echo_string", {"value": "héllo"}, "héllo"),
        ("echo_bool", {"value": True}, True),
        ("echo_optional_int", {"value": None}, None),
        ("echo_optional_int", {}, None),  # a nullable parameter may be left out
        ("echo_enum", {"status": "ACTIVE"}, "ACTIVE"),
        ("echo_list", {"values": ["a", "b"]}, ["a", "b"]),
        ("echo_dict", {"mapping": {"a": 1}}, [("a", 1)]),
        ("echo_date", {"value": "2024-01-02"}, datetime.date(2024, 1, 2)),
        ("echo_time", {"value": "01:02:03"}, datetime.time(1, 2, 3)),
        ("echo_duration", {"value": "0:00:05"}, datetime.timedelta(seconds=5)),
        ("echo_decimal", {"value": "1.5"}, decimal.Decimal("1.5000")),
        ("echo_bytes", {"data": b"\x00\x01"}, b"\x00\x01"),
        ("echo_bytes", {"data": "base64:AAE="}, b"\x00\x01"),
        ("echo_point", {"point": {"x": 1.0, "y": 2.0}}, {"x": 1.0, "y": 2.0}),  # a dataclass blob both ways
        (
            "with_defaults",
            {"required": 1, "optional_str": "s", "optional_int": 2},
            "required=1, optional_str=s, optional_int=2",
        ),
        ("void_noop", {}, None),
    ],
)
def test_unary(client: DynamicClient, method: str, params: dict[str, object], expected: object) -> None:
    assert client.call(method, params) == expected


def test_server_error_and_connection_still_usable(client: DynamicClient) -> None:
    with pytest.raises(RpcError) as info:
        client.call("raise_value_error", {"message": "boom"})
    assert info.value.error_type == "ValueError"
    assert "boom" in info.value.error_message
    assert client.call("echo_int", {"value": 3}) == 3


def test_refused_arguments(client: DynamicClient) -> None:
    with pytest.raises(ArgumentError, match="unknown method 'nope'"):
        client.call("nope", {})
    with pytest.raises(ArgumentError, match="'value': 'abc' does not convert to int64"):
        client.call("echo_int", {"value": "abc"})
    with pytest.raises(ArgumentError, match="not an integer"):
        client.call("echo_int", {"value": 2.5})  # pyarrow would truncate it
    with pytest.raises(ArgumentError, match="unexpected parameter 'valu'"):
        client.call("echo_int", {"valu": 1})
    with pytest.raises(ArgumentError, match="missing required parameter: 'value'"):
        client.call("echo_int", {})
    with pytest.raises(ArgumentError, match="is a producer method, not unary"):
        client.call("produce_n", {"count": 1})
    assert client.call("echo_int", {"value": 4}) == 4


def test_producer(client: DynamicClient) -> None:
    with client.stream("produce_n", {"count": 3}) as stream:
        assert stream.header is None
        rows = [row for batch in stream for row in batch.to_pylist()]
    assert rows == [{"index": i, "value": 10 * i} for i in range(3)]
    assert client.call("echo_int", {"value": 5}) == 5


def test_producer_with_header(client: DynamicClient) -> None:
    stream = client.stream("produce_with_header", {"count": 2})
    assert stream.header == {"total_expected": 2, "description": "producing 2 batches"}
    assert sum(b.num_rows for b in stream) == 2


def test_exchange(client: DynamicClient) -> None:
    with client.exchange("exchange_accumulate") as session:
        first = session.send({"value": 1.0})
        assert isinstance(first, pa.RecordBatch)
        assert first.to_pylist() == [{"running_sum": 1.0, "exchange_count": 1}]
        assert session.send([{"value": 2.0}, {"value": 0.5}]).to_pylist() == [{"running_sum": 3.5, "exchange_count": 2}]
        assert session.send({"value": 1}).to_pylist()[0]["running_sum"] == 4.5  # converted to the first input's schema
    with client.exchange("exchange_scale", {"factor": 2.0}) as session:
        out = session.send(pa.RecordBatch.from_pydict({"value": [1.0, 2.0]}))
        assert out.column("value").to_pylist() == [2.0, 4.0]


def test_exchange_with_header(client: DynamicClient) -> None:
    with client.exchange("exchange_with_header", {"factor": 3.0}) as session:
        assert session.header is not None
        assert session.send({"value": 1.0}).column("value").to_pylist() == [3.0]


def test_values() -> None:
    blob = encode_value({"x": 1.0}, pa.field("p", pa.binary(), nullable=False))[0].as_py()
    assert decode_blob(blob) == {"x": 1.0}
    assert decode_blob(b"not ipc") is None
    with pytest.raises(ValueError, match="not nullable"):
        encode_value(None, pa.field("p", pa.int64(), nullable=False))
    assert encode_value(None, pa.field("p", pa.int64())).null_count == 1


def test_dynamic_connect_needs_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one"), dynamic_connect():
        pass
