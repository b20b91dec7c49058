"""Unary calls through serve_pipe and connect: every type row, defaults, void, errors, logs."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.services import Calculator, CalculatorImpl, Color, Everything, Point, Shape
from tests.transports.factories import KINDS, open_service
from vgi_rpc import Level, Message, RpcError, connect, serve_pipe

WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")


def _open(kind: str, on_log: Any = None) -> AbstractContextManager[Everything]:
    return open_service(kind, "everything", on_log)


@pytest.fixture(params=KINDS)
def proxy(request: pytest.FixtureRequest) -> Iterator[Everything]:
    with _open(request.param) as p:
        yield p


def test_readme_calculator_pipe_and_subprocess() -> None:
    with serve_pipe(Calculator, CalculatorImpl()) as proxy:
        assert proxy.add(a=2.0, b=3.0) == 5.0
    with connect(Calculator, [sys.executable, WORKER, "--calc"]) as proxy:
        assert proxy.add(a=2.0, b=3.0) == 5.0


SHAPE = Shape(
    name="tri",
    color=Color.BLUE,
    corners=[Point(0.0, 0.0), Point(1.0, 0.5)],
    center=None,
    tags={"a": 1, "b": -2},
)

CASES: list[tuple[str, Any]] = [
    ("echo_str", "héllo ✓"),
    ("echo_bytes", b"\x00\xffabc"),
    ("echo_int", -(2**63)),
    ("echo_float", 1.5e300),
    ("echo_bool", False),
    ("echo_list", [1, 2, 3]),
    ("echo_dict", {"x": 1, "y": 2}),
    ("echo_frozenset", frozenset({3, 1, 2})),
    ("echo_enum", Color.GREEN),
    ("echo_optional", None),
    ("echo_optional", "set"),
    ("echo_point", Point(1.0, -2.0)),
    ("echo_shape", SHAPE),
    ("echo_int32", -(2**31)),
    ("echo_uint64", 2**64 - 1),
    ("echo_date", dt.date(1999, 12, 31)),
    ("echo_ts", dt.datetime(2024, 2, 29, 12, 0, 1, 5, tzinfo=dt.UTC)),
    ("echo_decimal", Decimal("12345678.90")),
    ("echo_newtype", 42),
]


@pytest.mark.parametrize(("method", "value"), CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_every_type_round_trips(proxy: Everything, method: str, value: Any) -> None:
    result = getattr(proxy, method)(value=value)
    assert result == value
    assert type(result) is type(value)


def test_defaults_void_and_positional(proxy: Everything) -> None:
    assert proxy.greet(name="ann") == "hello ann"
    assert proxy.greet("bob", times=2) == "hello bob hello bob"
    assert proxy.greet(name="cy", greeting="hi") == "hi cy"
    assert proxy.noop() is None


def test_client_side_argument_errors(proxy: Everything) -> None:
    with pytest.raises(TypeError, match="missing required argument"):
        proxy.greet()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        proxy.greet(name="x", nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="not Optional"):
        proxy.echo_str(value=None)  # type: ignore[arg-type]
    assert proxy.echo_int(value=4) == 4


def test_remote_error_carries_type_message_traceback_and_connection_survives(proxy: Everything) -> None:
    with pytest.raises(RpcError) as info:
        proxy.fail(message="something went wrong")
    err = info.value
    assert err.error_type == "ValueError"
    assert err.error_message == "something went wrong"
    assert "raise_it" in err.remote_traceback
    assert "Traceback" in err.remote_traceback
    assert err.error_code == "UNKNOWN"
    assert proxy.echo_str(value="after") == "after"


@pytest.mark.parametrize("kind", KINDS)
def test_logs_arrive_in_order_before_the_call_returns(kind: str) -> None:
    seen: list[Message] = []
    with _open(kind, on_log=seen.append) as proxy:
        assert proxy.chatty(value="abc") == "ABC"
        assert [(m.level, m.message) for m in seen] == [
            (Level.DEBUG, "first"),
            (Level.INFO, "second"),
            (Level.WARN, "third"),
        ]
        assert seen[0].extra == {"step": "1"}
        assert seen[2].extra == {}
