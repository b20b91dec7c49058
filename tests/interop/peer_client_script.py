"""Run by the reference peer (python -I): its client drives OUR worker; prints one JSON report.

argv: <our python> <path of tests/workers/everything_worker.py>
"""

import datetime as dt
import json
import os
import sys
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(ROOT)  # after site-packages: the reference vgi_rpc wins


import vgi_rpc  # noqa: E402
from tests import services as s  # noqa: E402

our_python, worker = sys.argv[1], sys.argv[2]
report = {"client_vgi_rpc": vgi_rpc.__file__, "checks": {}}
checks = report["checks"]

cases = {
    "echo_str": "héllo ✓",
    "echo_bytes": b"\x00\xff",
    "echo_int": -(2**63),
    "echo_float": 2.5,
    "echo_bool": True,
    "echo_list": [1, 2],
    "echo_dict": {"a": 1},
    "echo_frozenset": frozenset({1, 2}),
    "echo_enum": s.Color.BLUE,
    "echo_optional": None,
    "echo_point": s.Point(1.0, 2.0),
    "echo_shape": s.Shape("t", s.Color.RED, [s.Point(0.0, 1.0)], s.Point(5.0, 5.0), {"k": 3}),
    "echo_int32": 7,
    "echo_uint64": 2**64 - 1,
    "echo_date": dt.date(2001, 2, 3),
    "echo_ts": dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    "echo_decimal": Decimal("-12.34"),
    "echo_newtype": s.UserId(7),
}
logs = []
with vgi_rpc.connect(s.Everything, [our_python, worker], on_log=logs.append) as proxy:
    for method, value in cases.items():
        checks[method] = getattr(proxy, method)(value=value) == value
    checks["defaults"] = proxy.greet(name="ann") == "hello ann" and proxy.greet(name="b", greeting="hi") == "hi b"
    checks["void"] = proxy.noop() is None
    try:
        proxy.fail(message="something went wrong")
        checks["error"] = False
    except vgi_rpc.RpcError as err:
        report["error"] = [err.error_type, err.error_message, "raise_it" in err.remote_traceback]
    checks["after_error"] = proxy.echo_int(value=5) == 5
    big = bytes(range(256)) * (3 << 12) + b"odd"  # 3 MiB: our worker reads it into its own bytes
    checks["echo_bytes_3mib"] = proxy.echo_bytes(value=big) == big
    checks["logs_value"] = proxy.chatty(value="ab") == "AB"
    report["logs"] = [[m.level.value, m.message, {k: str(v) for k, v in m.extra.items() if k == "step"}] for m in logs]


class EverythingNext(s.Everything):
    protocol_name = "Everything"
    protocol_version = "2.0.0"


with vgi_rpc.connect(EverythingNext, [our_python, worker]) as proxy:
    try:
        proxy.echo_int(value=1)
    except vgi_rpc.RpcError as err:
        report["version_error"] = [err.error_type, err.error_code, err.error_kind]

# streams
with vgi_rpc.connect(s.StreamService, [our_python, worker, "--streams"], on_log=logs.append) as proxy:
    logs.clear()
    checks["producer"] = [b.batch.column("i")[0].as_py() for b in proxy.count(n=3, chatty=True)] == [0, 1, 2]
    checks["producer_logs"] = [m.message for m in logs] == ["batch 0", "batch 1", "batch 2"]
    with proxy.count_with_header(n=2) as session:
        checks["header"] = session.header == s.CountHeader(2, "2 items")
        checks["header_batches"] = len(list(session)) == 2
    with proxy.running_sum() as session:
        a = session.exchange(vgi_rpc.AnnotatedBatch.from_pydict({"value": [1.0, 2.0]})).batch.to_pydict()
        b = session.exchange(vgi_rpc.AnnotatedBatch.from_pydict({"value": [4.0]})).batch.to_pydict()
        checks["exchange"] = a == {"total": [3.0]} and b == {"total": [7.0]}
    got = []
    try:
        for batch in proxy.count(n=5, fail_at=2):
            got.append(batch)
    except vgi_rpc.RpcError as err:
        report["stream_error"] = [len(got), err.error_type, err.error_message]
    checks["after_stream_error"] = proxy.ping() == "pong"
    # (a bare ``for ... break`` desyncs the 0.52.2 client even against its own server: use the session)
    with proxy.count(n=-1) as session:
        session.tick()
        session.tick()
    checks["after_early_close"] = proxy.ping() == "pong"
    before = proxy.cancelled_count()
    with proxy.count(n=-1) as session:
        session.tick()
        session.cancel()
    checks["cancel"] = proxy.cancelled_count() == before + 1
    checks["after_cancel"] = proxy.ping() == "pong"

# introspection of our worker by the reference
for name, args in (("Everything", []), ("StreamService", ["--streams"])):
    transport = vgi_rpc.SubprocessTransport([our_python, worker, "--describe", *args])
    try:
        desc = vgi_rpc.introspect(transport, protocol=name)
        report.setdefault("hashes", {})[name] = desc.protocol_hash
    finally:
        transport.close()

# wide types: the reference client against our conformance worker (the runner never calls these)
from vgi_rpc.conformance import _types as ct  # noqa: E402
from vgi_rpc.conformance._protocol import ConformanceService  # noqa: E402  (the reference's interface)

wide = {
    "echo_int8": -128,
    "echo_int16": -32768,
    "echo_int32": 2**31 - 1,
    "echo_uint8": 255,
    "echo_uint16": 65535,
    "echo_uint32": 2**32 - 1,
    "echo_uint64": 2**64 - 1,
    "echo_float32": -0.5,
    "echo_date": dt.date(1970, 1, 2),
    "echo_timestamp": dt.datetime(2000, 1, 1, 0, 0, 0, 1),
    "echo_timestamp_utc": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    "echo_time": dt.time(12, 30, 0, 5),
    "echo_duration": dt.timedelta(days=-1, microseconds=3),
    "echo_decimal": Decimal("-1234.5678"),
    "echo_large_string": "large ✓",
    "echo_large_binary": b"\x00big",
    "echo_fixed_binary": b"abcdefgh",
    "echo_dict_encoded_string": "dict",
}
wide_types = ct.WideTypes(
    int8_field=-1,
    int16_field=2,
    int32_field=-3,
    uint8_field=4,
    uint16_field=5,
    uint32_field=6,
    uint64_field=2**64 - 1,
    float32_field=0.25,
    date_field=dt.date(2024, 2, 29),
    timestamp_field=dt.datetime(2024, 1, 1, 1, 1, 1, 1),
    timestamp_utc_field=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    time_field=dt.time(1, 2, 3),
    duration_field=dt.timedelta(seconds=5),
    decimal_field=Decimal("1.0001"),
    large_string_field="ls",
    large_binary_field=b"lb",
    fixed_binary_field=b"12345678",
)
with vgi_rpc.connect(ConformanceService, [our_python, "-m", "vgi_rpc.conformance"]) as proxy:
    for method, value in wide.items():
        checks[f"wide:{method}"] = getattr(proxy, method)(value=value) == value
    checks["wide:echo_wide_types"] = proxy.echo_wide_types(data=wide_types) == wide_types
    nested = proxy.pack_nested_containers(
        statuses=[ct.Status.ACTIVE], points=[ct.Point(1.0, 2.0)], status_by_name={"k": ct.Status.CLOSED}
    )
    checks["wide:nested_containers"] = nested.tagged_point == ct.Point(1.0, 2.0)

print(json.dumps(report, default=str))
