"""Arguments refused on the client before sending (ArgumentError), and enums by member, name or value.

Our client sends an enum member's NAME (as 0.52.2 does) whether it was given the member, its name
or its value; our server takes a name or a value (0.52.2's client sends a value as the raw
string, and 0.52.2's server takes it). Everything else the encoder cannot put on the wire is an
``ArgumentError`` naming the method and the parameter, with the builtin ``error_type`` 0.52.2
would report, and nothing reaches the server.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Protocol

import pyarrow as pa
import pytest

from tests.services import Color, Everything, EverythingImpl, Point, Shape
from tests.transports.turn_driver import frames
from vgi_rpc import ArgumentError, RpcConnection, RpcError, RpcServer, make_pipe_pair
from vgi_rpc._core.codec import request_metadata
from vgi_rpc._core.framing import decode_messages
from vgi_rpc._core.invoke import RequestEncoder, read_unary_reply
from vgi_rpc._core.ipc import IpcValidation, encode_stream
from vgi_rpc._core.observe import CallRecord
from vgi_rpc._core.service import service_spec


class Shade(enum.Enum):
    DARK = "dark"
    LIGHT = "light"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Palette(Protocol):
    """Enums nested in containers, enum results, and an IntEnum."""

    def mix(self, colors: list[Color], by_name: dict[str, Color]) -> list[Color]: ...
    def pick(self, text: str) -> Color: ...
    def level(self, p: Priority) -> str: ...


class PaletteImpl:
    def mix(self, colors: list[Color], by_name: dict[str, Color]) -> list[Color]:
        assert all(isinstance(c, Color) for c in [*colors, *by_name.values()])
        return [*colors, *by_name.values()]

    def pick(self, text: str) -> Color:
        return text  # type: ignore[return-value]  # a name or a value: encoded as the member's name

    def level(self, p: Priority) -> str:
        return f"{type(p).__name__}.{p.name}"


def _encode(protocol: type, method: str, *args: Any, **kwargs: Any) -> bytes:
    spec = service_spec(protocol)
    return RequestEncoder(spec, spec.methods[method]).encode(args, kwargs)


def _refused(protocol: type, method: str, *args: Any, **kwargs: Any) -> ArgumentError:
    with pytest.raises(ArgumentError) as info:
        _encode(protocol, method, *args, **kwargs)
    err = info.value
    assert isinstance(err, RpcError)
    assert isinstance(err, TypeError)  # code written for plain TypeError still catches it
    assert err.error_message in str(err)
    assert err.remote_traceback == ""
    return err


def _serve(protocol: type, impl: object, method: str, request: bytes) -> Any:
    """Serve one request stream with the core dispatcher; the decoded result (or raise its RpcError)."""
    reply = RpcServer(protocol, impl).dispatcher.handle_messages(frames(request)[0])
    data = reply.stream()  # type: ignore[union-attr]
    _, items = decode_messages(frames(bytes(memoryview(data)))[0])
    return read_unary_reply(service_spec(protocol).methods[method], items, None, IpcValidation.FULL)


def _raw_enum_request(protocol: type, method: str, param: str, text: str) -> bytes:
    """A request whose dictionary column holds *text* as is (what 0.52.2's client sends for a str)."""
    spec = service_spec(protocol)
    m = spec.methods[method]
    column = pa.DictionaryArray.from_arrays(pa.array([0], pa.int16()), pa.array([text], pa.utf8()))
    schema = pa.schema([pa.field(param, column.type, nullable=False)])
    assert schema.equals(m.params_schema)
    batch = pa.RecordBatch.from_arrays([column], schema=schema)
    return bytes(encode_stream(schema, ((batch, request_metadata(spec, m)),)).to_pybytes())


def _wire_names(request: bytes) -> list[Any]:
    _, items = decode_messages(frames(request)[0])
    return [column[0].as_py() for column in items[0][0].columns]


# -- enums: member, name or value; the name on the wire -------------------------------------------


@pytest.mark.parametrize("given", [Color.RED, "RED", "red"], ids=["member", "name", "value"])
def test_an_enum_argument_is_sent_as_its_name(given: Any) -> None:
    request = _encode(Everything, "color_name", c=given)
    assert _wire_names(request) == ["RED"]
    assert request == _encode(Everything, "color_name", Color.RED)
    assert _serve(Everything, EverythingImpl(), "color_name", request) == "Color.RED"


def test_an_int_enum_by_value() -> None:
    request = _encode(Palette, "level", p=2)
    assert _wire_names(request) == ["HIGH"]
    assert _serve(Palette, PaletteImpl(), "level", request) == "Priority.HIGH"
    err = _refused(Palette, "level", p=3)
    assert err.error_type == "KeyError"
    assert "level() parameter 'p': 3 is not a valid Priority name or value; valid: LOW, HIGH" in str(err)


@pytest.mark.parametrize("given", ["purple", "Red", 1, Shade.DARK, 2.5])
def test_an_unknown_enum_member_is_refused_before_sending(given: Any) -> None:
    err = _refused(Everything, "color_name", c=given)
    assert err.error_type == "KeyError"
    assert err.error_message == (
        f"color_name() parameter 'c': {given!r} is not a valid Color name or value; valid: RED, GREEN, BLUE"
    )


def test_nested_enums_follow_the_same_rule() -> None:
    request = _encode(Palette, "mix", colors=[Color.RED, "GREEN", "blue"], by_name={"x": "green"})
    assert _serve(Palette, PaletteImpl(), "mix", request) == [Color.RED, Color.GREEN, Color.BLUE, Color.GREEN]
    err = _refused(Palette, "mix", colors=["red", "purple"], by_name={})
    assert err.error_type == "KeyError"
    assert "mix() parameter 'colors': 'purple' is not a valid Color name or value" in err.error_message
    err = _refused(Palette, "mix", colors=[], by_name={"x": "nope"})
    assert "mix() parameter 'by_name': 'nope'" in err.error_message
    # a dataclass field (the dataclass travels as a binary IPC blob)
    shape = Shape("t", "red", [Point(0.0, 1.0)], None, {})  # type: ignore[arg-type]
    assert (
        _serve(Everything, EverythingImpl(), "echo_shape", _encode(Everything, "echo_shape", value=shape)).color
        is Color.RED
    )
    err = _refused(Everything, "echo_shape", value=Shape("t", "purple", [], None, {}))  # type: ignore[arg-type]
    assert err.error_type == "KeyError"
    assert "echo_shape() parameter 'value': 'purple' is not a valid Color name or value" in err.error_message


@pytest.mark.parametrize(("text", "expected"), [("RED", "Color.RED"), ("red", "Color.RED"), ("blue", "Color.BLUE")])
def test_the_server_takes_a_name_or_a_value(text: str, expected: str) -> None:
    request = _raw_enum_request(Everything, "color_name", "c", text)
    assert _serve(Everything, EverythingImpl(), "color_name", request) == expected


def test_the_server_refuses_an_unknown_member_with_a_key_error() -> None:
    request = _raw_enum_request(Everything, "color_name", "c", "purple")
    with pytest.raises(RpcError) as info:
        _serve(Everything, EverythingImpl(), "color_name", request)
    assert not isinstance(info.value, ArgumentError)  # the server's error, not a client refusal
    assert info.value.error_type == "KeyError"
    assert "'purple' is not a valid Color name or value" in info.value.error_message


def test_an_enum_result_given_as_a_name_or_value() -> None:
    assert _serve(Palette, PaletteImpl(), "pick", _encode(Palette, "pick", text="green")) is Color.GREEN
    assert _serve(Palette, PaletteImpl(), "pick", _encode(Palette, "pick", text="GREEN")) is Color.GREEN
    with pytest.raises(RpcError) as info:
        _serve(Palette, PaletteImpl(), "pick", _encode(Palette, "pick", text="mauve"))
    assert info.value.error_type == "KeyError"
    assert "'mauve' is not a valid Color name or value" in info.value.error_message


# -- wrong types and bad values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "value", "message"),
    [
        ("echo_str", b"bytes", "echo_str() parameter 'value' expects str, got bytes"),
        ("echo_str", 1, "echo_str() parameter 'value' expects str, got int"),
        ("echo_optional", b"x", "echo_optional() parameter 'value' expects str | None, got bytes"),
        ("echo_int", "1", "echo_int() parameter 'value' expects int, got str"),
        ("echo_int", True, "echo_int() parameter 'value' expects int, got bool"),
        ("echo_float", "1.5", "echo_float() parameter 'value' expects float, got str"),
        ("echo_bool", 1, "echo_bool() parameter 'value' expects bool, got int"),
        ("echo_list", 1, "echo_list() parameter 'value' expects list[int], got int"),
        ("echo_list", [1, "x"], "echo_list() parameter 'value' expects list[int], got list"),
        ("echo_dict", {"a": "x"}, "echo_dict() parameter 'value' expects dict[str, int], got dict"),
        ("echo_frozenset", 3, "echo_frozenset() parameter 'value' expects frozenset[int], got int"),
        ("echo_point", {"x": 1.0}, "echo_point() parameter 'value' expects Point, got dict"),
        ("echo_date", "2001-02-03", "echo_date() parameter 'value' expects date, got str"),
        ("echo_ts", dt.date(2001, 2, 3), "echo_ts() parameter 'value' expects datetime, got date"),
    ],
)
def test_a_wrong_type_is_a_type_error(method: str, value: Any, message: str) -> None:
    err = _refused(Everything, method, value=value)
    assert err.error_type == "TypeError"
    assert err.error_message.startswith(message)
    assert "Expected bytes" not in err.error_message


@pytest.mark.parametrize(
    ("method", "value", "fragment"),
    [
        ("echo_int", 2**70, "1180591620717411303424 does not fit int64"),
        ("echo_int32", 2**31, "2147483648 does not fit int32"),
        ("echo_uint64", -1, "-1 does not fit uint64"),
        ("echo_decimal", Decimal("1.234"), "Decimal('1.234') does not fit decimal128(10, 2)"),
    ],
)
def test_a_right_type_with_a_bad_value_is_a_value_error(method: str, value: Any, fragment: str) -> None:
    err = _refused(Everything, method, value=value)
    assert err.error_type == "ValueError"
    assert err.error_message.startswith(f"{method}() parameter 'value': {fragment}")


def test_bytes_for_a_bytes_parameter_may_be_text() -> None:
    # as in 0.52.2: only str refuses the other one
    assert (
        _serve(Everything, EverythingImpl(), "echo_bytes", _encode(Everything, "echo_bytes", value="text")) == b"text"
    )


# -- binding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "message"),
    [
        ("greet", (), {}, "greet() missing required argument: 'name'"),
        ("greet", (), {"name": "x", "nope": 1}, "greet() got an unexpected keyword argument 'nope'"),
        ("greet", ("a", "b", 1, 2), {}, "greet() takes 3 argument(s) but 4 were given"),
        ("greet", ("a",), {"name": "b"}, "greet() got multiple values for argument 'name'"),
        ("noop", (1,), {}, "noop() takes 0 argument(s) but 1 were given"),
        ("echo_str", (None,), {}, "echo_str() parameter 'value' is not Optional but got None"),
        ("echo_int", (), {"value": None}, "echo_int() parameter 'value' is not Optional but got None"),
        ("color_name", (None,), {}, "color_name() parameter 'c' is not Optional but got None"),
    ],
)
def test_binding_errors(method: str, args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    err = _refused(Everything, method, *args, **kwargs)
    assert err.error_type == "TypeError"
    assert err.error_message == message


# -- nothing is sent -------------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_start(self, record: CallRecord) -> None:
        self.calls.append(record.method)

    def on_end(self, record: CallRecord) -> None:
        pass


@pytest.fixture
def counted() -> Iterator[tuple[Everything, _Counter]]:
    counter = _Counter()
    server = RpcServer(Everything, EverythingImpl(), observers=[counter])
    client_side, server_side = make_pipe_pair()
    thread = threading.Thread(target=server.serve, args=(server_side,), daemon=True)
    thread.start()
    try:
        with RpcConnection(Everything, client_side) as proxy:
            yield proxy, counter
    finally:
        client_side.close()
        thread.join(timeout=10)
        server_side.close()


def test_refused_calls_send_nothing_and_the_connection_stays_usable(counted: tuple[Everything, _Counter]) -> None:
    proxy, counter = counted
    refusals: list[tuple[Any, str]] = [
        (lambda: proxy.color_name(c="purple"), "KeyError"),  # type: ignore[arg-type]
        (lambda: proxy.echo_str(value=b"bytes"), "TypeError"),  # type: ignore[arg-type]
        (lambda: proxy.echo_str(value=1), "TypeError"),  # type: ignore[arg-type]
        (lambda: proxy.echo_int(value=2**64), "ValueError"),
        (lambda: proxy.echo_int(value=None), "TypeError"),  # type: ignore[arg-type]
        (lambda: proxy.greet(name="x", nope=1), "TypeError"),  # type: ignore[call-arg]
        (lambda: proxy.noop(1), "TypeError"),  # type: ignore[call-arg]
    ]
    for call, error_type in refusals:
        with pytest.raises(ArgumentError) as info:
            call()
        assert info.value.error_type == error_type
        assert counter.calls == []
    assert proxy.color_name(c="red") == "Color.RED"  # type: ignore[arg-type]
    assert proxy.color_name(c="GREEN") == "Color.GREEN"  # type: ignore[arg-type]
    assert proxy.color_name(c=Color.BLUE) == "Color.BLUE"
    assert proxy.echo_int(value=4) == 4
    assert counter.calls == ["color_name", "color_name", "color_name", "echo_int"]
