"""Requests laid out as our client writes them are unpacked directly; others take the general path.

Both paths must give the same replies: the template path is only a shortcut.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.services import Calculator, CalculatorImpl, Everything, EverythingImpl
from vgi_rpc._core import dispatch as dispatch_module
from vgi_rpc._core.framing import FrameReader, decode_messages
from vgi_rpc._core.invoke import RequestEncoder, read_unary_reply
from vgi_rpc._core.ipc import IpcValidation, encode_stream
from vgi_rpc._core.service import service_spec
from vgi_rpc.server import RpcServer


def _frames(data: bytes) -> list[tuple[bytes | bytearray, bool]]:
    source = io.BytesIO(data)
    messages = FrameReader(source.read, source.readinto).read_messages()
    assert messages is not None
    return messages


def _call(server: RpcServer, protocol: type, method: str, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    """Serve one call built by our encoder; returns (value, whether the template path took it)."""
    spec = service_spec(protocol)
    m = spec.methods[method]
    request = RequestEncoder(spec, m).encode((), kwargs)
    decoded: list[bool] = []
    real = dispatch_module.decode_messages

    def spy(messages: Any) -> Any:
        decoded.append(True)
        return real(messages)

    monkeypatch.setattr(dispatch_module, "decode_messages", spy)
    reply = server.dispatcher.handle_messages(_frames(request))
    monkeypatch.setattr(dispatch_module, "decode_messages", real)
    data = reply.stream()  # type: ignore[union-attr]
    _, items = decode_messages(_frames(bytes(memoryview(data))))
    return read_unary_reply(m, items, None, IpcValidation.FULL), not decoded


@pytest.mark.parametrize(
    ("method", "kwargs", "expected", "template"),
    [
        ("echo_int", {"value": -(2**63)}, -(2**63), True),
        ("echo_float", {"value": 2.5}, 2.5, True),
        ("echo_bool", {"value": True}, True, True),
        ("noop", {}, None, True),
        ("echo_str", {"value": "x"}, "x", True),  # strings and bytes: the var-width template
        ("echo_str", {"value": "é€😀" * 9}, "é€😀" * 9, True),
        ("echo_str", {"value": ""}, "", True),
        ("echo_bytes", {"value": b"\x00\xff" * 5}, b"\x00\xff" * 5, True),
        ("echo_str", {"value": "y" * 40000}, "y" * 40000, False),  # longer than the template takes
        ("echo_list", {"value": [1, 2]}, [1, 2], False),  # not a scalar: the general path
        ("echo_int32", {"value": 7}, 7, False),  # int32 is not templated
    ],
)
def test_template_and_general_paths(
    method: str, kwargs: dict[str, Any], expected: Any, template: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RpcServer(Everything, EverythingImpl())
    # a method's codecs are built at its first call, which therefore takes the general path
    first, first_took_template = _call(server, Everything, method, monkeypatch, **kwargs)
    assert first == expected and not first_took_template
    value, took_template = _call(server, Everything, method, monkeypatch, **kwargs)
    assert value == expected
    assert took_template is template


def test_another_layout_of_the_same_call_takes_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same add() with an extra metadata key (as another client might send) is not a template match."""
    spec = service_spec(Calculator)
    m = spec.methods["add"]
    server = RpcServer(Calculator, CalculatorImpl())
    template = RequestEncoder(spec, m).encode((), {"a": 1.0, "b": 2.0})
    _, items = decode_messages(_frames(template))
    batch, md = items[0]
    other = bytes(encode_stream(m.params_schema, [(batch, {**(md or {}), b"x-extra": b"1"})]).to_pybytes())
    decoded: list[bool] = []
    real = dispatch_module.decode_messages
    monkeypatch.setattr(dispatch_module, "decode_messages", lambda msgs: decoded.append(True) or real(msgs))
    reply = server.dispatcher.handle_messages(_frames(other))
    assert decoded == [True]
    _, out = decode_messages(_frames(bytes(memoryview(reply.stream()))))  # type: ignore[union-attr]
    assert read_unary_reply(m, out, None, IpcValidation.FULL) == 3.0
