"""Our client against the reference worker: every type row, wide types, errors, logs, versions, streams."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from tests.services import CountHeader, Everything, StreamService
from tests.transports.test_unary import CASES
from vgi_rpc import (
    AnnotatedBatch,
    Level,
    Message,
    ProtocolVersionError,
    RpcError,
    StderrMode,
    SubprocessTransport,
    connect,
    introspect,
)
from vgi_rpc.conformance import ConformanceService
from vgi_rpc.conformance._types import (
    ContainerWideTypes,
    DeepNested,
    EmbeddedArrow,
    Status,
    WideTypes,
)
from vgi_rpc.conformance._types import (
    Point as CPoint,
)

pytestmark = pytest.mark.interop
PEER_WORKER = str(Path(__file__).resolve().parents[1] / "workers" / "peer_worker.py")


def peer_cmd(peer_python: Path) -> list[str]:
    return [str(peer_python), "-I", PEER_WORKER]


@pytest.fixture
def everything(peer_python: Path) -> Iterator[tuple[Everything, list[Message]]]:
    logs: list[Message] = []
    os.environ["VGI_TEST_SERVICE"] = "everything"
    with connect(Everything, peer_cmd(peer_python), on_log=logs.append) as proxy:
        yield proxy, logs


@pytest.mark.parametrize(("method", "value"), CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_every_type_row(everything: tuple[Everything, list[Message]], method: str, value: Any) -> None:
    proxy, _ = everything
    result = getattr(proxy, method)(value=value)
    assert result == value
    assert type(result) is type(value)


def test_a_big_bytes_value_both_ways(everything: tuple[Everything, list[Message]]) -> None:
    # the peer's reply (its pyarrow writer) read hollow: the value straight into its own bytes
    proxy, _ = everything
    big = bytes(range(256)) * (3 << 12) + b"odd"  # 3 MiB and 3 bytes
    assert proxy.echo_bytes(value=big) == big
    assert proxy.echo_str(value="after") == "after"


def test_defaults_void_errors_logs(everything: tuple[Everything, list[Message]]) -> None:
    proxy, logs = everything
    assert proxy.greet(name="ann") == "hello ann"
    assert proxy.greet(name="bo", times=2) == "hello bo hello bo"
    assert proxy.noop() is None
    with pytest.raises(RpcError) as info:
        proxy.fail(message="something went wrong")
    assert info.value.error_type == "ValueError"
    assert info.value.error_message == "something went wrong"
    assert "raise_it" in info.value.remote_traceback
    assert proxy.chatty(value="x") == "X"
    assert [(m.level, m.message) for m in logs] == [
        (Level.DEBUG, "first"),
        (Level.INFO, "second"),
        (Level.WARN, "third"),
    ]
    assert logs[0].extra["step"] == "1"


class EverythingNext(Everything):
    protocol_name: ClassVar[str] = "Everything"
    protocol_version: ClassVar[str] = "1.3.0"


def test_protocol_version_mismatch(peer_python: Path) -> None:
    os.environ["VGI_TEST_SERVICE"] = "everything"
    with connect(EverythingNext, peer_cmd(peer_python)) as proxy:
        with pytest.raises(ProtocolVersionError) as info:
            proxy.echo_int(value=1)
        assert info.value.error_code == "FAILED_PRECONDITION"
        assert info.value.error_kind == "protocol_version_mismatch"


WIDE = WideTypes(
    int8_field=-128,
    int16_field=32767,
    int32_field=-(2**31),
    uint8_field=255,
    uint16_field=65535,
    uint32_field=2**32 - 1,
    uint64_field=2**64 - 1,
    float32_field=1.5,
    date_field=dt.date(2024, 2, 29),
    timestamp_field=dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    timestamp_utc_field=dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    time_field=dt.time(23, 59, 59, 999999),
    duration_field=dt.timedelta(days=-3, microseconds=7),
    decimal_field=Decimal("-1234567890123456.1234"),
    large_string_field="large ✓",
    large_binary_field=b"\x00\xff" * 10,
    fixed_binary_field=b"12345678",
)

WIDE_CALLS: list[tuple[str, Any]] = [
    ("echo_int8", -128),
    ("echo_int16", -32768),
    ("echo_uint8", 255),
    ("echo_uint16", 65535),
    ("echo_uint32", 2**32 - 1),
    ("echo_uint64", 2**64 - 1),
    ("echo_int32", 2**31 - 1),
    ("echo_float32", -0.5),
    ("echo_date", dt.date(1970, 1, 1)),
    ("echo_timestamp", dt.datetime(2000, 1, 1, 0, 0, 0, 1)),
    ("echo_timestamp_utc", dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
    ("echo_time", dt.time(12, 30)),
    ("echo_duration", dt.timedelta(seconds=90, microseconds=1)),
    ("echo_decimal", Decimal("3.1415")),
    ("echo_large_string", "big"),
    ("echo_large_binary", b"big"),
    ("echo_fixed_binary", b"abcdefgh"),
    ("echo_dict_encoded_string", "dict-encoded"),
    ("echo_status_list", [Status.CLOSED, Status.PENDING]),
    ("echo_wide_types", WIDE),
    (
        "echo_container_wide_types",
        ContainerWideTypes(
            list_decimal=[Decimal("1.0000"), Decimal("-2.5000")],
            list_date=[dt.date(2020, 1, 1)],
            list_timestamp=[dt.datetime(2020, 1, 1, 1, 1, 1)],
            optional_date=None,
            optional_decimal=Decimal("7.0000"),
            optional_timestamp=None,
            dict_str_decimal={"a": Decimal("0.0001")},
            frozenset_int=frozenset({1, 2, 3}),
            list_optional_int=[1, None, 3],
        ),
    ),
    (
        "echo_deep_nested",
        DeepNested(
            list_of_lists_decimal=[[Decimal("1.0000")], []],
            optional_list_date=[dt.date(2021, 5, 5)],
            dict_encoded_string="x",
            list_of_dict_encoded=["a", "b", "a"],
        ),
    ),
    (
        "echo_embedded_arrow",
        EmbeddedArrow(batch=pa.RecordBatch.from_pydict({"v": [1, 2]}), schema=pa.schema([pa.field("s", pa.utf8())])),
    ),
]


@pytest.mark.parametrize(("method", "value"), WIDE_CALLS, ids=[m for m, _ in WIDE_CALLS])
def test_wide_types_against_the_reference_conformance_worker(peer_python: Path, method: str, value: Any) -> None:
    with connect(ConformanceService, [str(peer_python.parent / "vgi-rpc-conformance")]) as proxy:
        kwarg = (
            "statuses"
            if method == "echo_status_list"
            else ("data" if method.endswith(("types", "nested", "arrow")) else "value")
        )
        result = getattr(proxy, method)(**{kwarg: value})
        if isinstance(value, EmbeddedArrow):
            assert result.batch.equals(value.batch) and result.schema.equals(value.schema)
        else:
            assert result == value


def test_nested_containers_and_points(peer_python: Path) -> None:
    with connect(ConformanceService, [str(peer_python.parent / "vgi-rpc-conformance")]) as proxy:
        packed = proxy.pack_nested_containers(
            statuses=[Status.ACTIVE], points=[CPoint(1.0, 2.0)], status_by_name={"k": Status.CLOSED}
        )
        assert packed.frozen_statuses == frozenset({Status.ACTIVE})
        assert packed.tagged_point == CPoint(1.0, 2.0)
        assert proxy.echo_optional_point(point=None) is None
        assert proxy.inspect_point(point=CPoint(1.5, 2.5)) == "Point(1.5, 2.5)"


# -- streams -------------------------------------------------------------------------------------


@pytest.fixture
def streams(peer_python: Path) -> Iterator[tuple[StreamService, list[Message]]]:
    logs: list[Message] = []
    os.environ["VGI_TEST_SERVICE"] = "streams"
    with connect(StreamService, peer_cmd(peer_python), on_log=logs.append) as proxy:
        yield proxy, logs


def test_streams_against_the_reference_worker(streams: tuple[StreamService, list[Message]]) -> None:
    proxy, logs = streams
    assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=3, chatty=True)] == [0, 1, 2]
    assert [m.message for m in logs] == ["batch 0", "batch 1", "batch 2"]
    with proxy.count_with_header(n=2) as session:
        assert session.header == CountHeader(2, "2 items")
        assert len(list(session)) == 2
    with proxy.running_sum() as session:
        assert session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]})).batch.to_pydict() == {"total": [3.0]}
        assert session.exchange(AnnotatedBatch.from_pydict({"value": [4.0]})).batch.to_pydict() == {"total": [7.0]}
    got = []
    with pytest.raises(RpcError) as info:
        for batch in proxy.count(n=5, fail_at=2):
            got.append(batch)
    assert len(got) == 2 and info.value.error_message.endswith("failed at 2")
    for batch in proxy.count(n=-1):
        if batch.batch.column("i")[0].as_py() == 2:
            break
    before = proxy.cancelled_count()
    with proxy.count(n=-1) as session:
        session.tick()
        session.cancel()
    assert proxy.cancelled_count() == before + 1
    assert proxy.ping() == "pong"


def test_the_reference_worker_leaves_the_tick_ahead_offer_alone(streams: tuple[StreamService, list[Message]]) -> None:
    """Our client offers ticks ahead on every stream call; 0.52.2 ignores the key and stays lock-step."""
    proxy, _ = streams
    with proxy.count(n=40) as session:
        it = iter(session)
        assert next(it).batch.column("i")[0].as_py() == 0
        assert not session._channel.ticks_ahead()  # type: ignore[attr-defined]
        assert [b.batch.column("i")[0].as_py() for b in it] == list(range(1, 40))
    for _ in range(3):  # lock-step throughout: the connection stays in step
        assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=20)] == list(range(20))
    assert proxy.ping() == "pong"


def test_introspection_of_the_reference_worker_matches_our_hash(peer_python: Path) -> None:
    from vgi_rpc._core.describe import protocol_hash
    from vgi_rpc._core.service import service_spec

    for name, protocol in (("everything", Everything), ("streams", StreamService)):
        os.environ["VGI_TEST_SERVICE"] = name
        transport = SubprocessTransport(peer_cmd(peer_python), stderr=StderrMode.DEVNULL)
        try:
            desc = introspect(transport)
        finally:
            transport.close()
        assert desc.protocol_name == protocol.__name__
        assert desc.protocol_hash == protocol_hash(service_spec(protocol))
        assert set(desc.methods) == set(service_spec(protocol).methods)


def test_conformance_protocol_hash_equals_the_reference_workers(peer_python: Path) -> None:
    from vgi_rpc._core.describe import protocol_hash
    from vgi_rpc._core.service import service_spec

    transport = SubprocessTransport(
        [str(peer_python.parent / "vgi-rpc-conformance"), "--describe"], stderr=StderrMode.DEVNULL
    )
    try:
        desc = introspect(transport, protocol="ConformanceService")
    finally:
        transport.close()
    assert desc.protocol_version == "2.0.0"
    assert desc.protocol_hash == protocol_hash(service_spec(ConformanceService))
