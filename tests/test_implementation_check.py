"""An implementation that does not match its Protocol is refused when the server is built, naming every problem."""

from __future__ import annotations

from typing import Any, Protocol

import pytest

from vgi_rpc import CallContext, ImplementationError, RpcError, RpcServer, VgiRpcError, serve_pipe


class Svc(Protocol):
    def add(self, a: float, b: float) -> float: ...
    def name(self, who: str) -> str: ...
    def ping(self) -> str: ...


class Good:
    def add(self, a: float, b: float, ctx: CallContext | None = None) -> float:
        return a + b

    def name(self, **kwargs: Any) -> str:  # **kwargs accepts every Protocol parameter
        return str(kwargs["who"])

    def ping(self, verbose: bool = False) -> str:  # an extra parameter with a default is fine
        return "pong"


class MissingTwo:
    def add(self, a: float, b: float) -> float:
        return a + b


class Mismatched:
    def add(self, a: float) -> float:  # misses b
        return a

    def name(self, whom: str) -> str:  # wrong name: misses who, requires whom
        return whom

    def ping(self, loud: bool) -> str:  # an extra required parameter
        return "pong"


class Async:
    def add(self, a: float, b: float) -> float:
        return a + b

    async def name(self, who: str) -> str:
        return who

    def ping(self) -> str:
        return "pong"


def test_a_matching_implementation_is_served() -> None:
    with serve_pipe(Svc, Good()) as proxy:
        assert proxy.add(a=1.0, b=2.0) == 3.0
        assert proxy.name(who="x") == "x"


def test_every_missing_method_is_named() -> None:
    with pytest.raises(ImplementationError) as info:
        RpcServer(Svc, MissingTwo())
    assert "name() is missing" in str(info.value) and "ping() is missing" in str(info.value)
    assert isinstance(info.value, RpcError) and isinstance(info.value, VgiRpcError)
    assert isinstance(info.value, TypeError) and info.value.error_type == "TypeError"


def test_signature_mismatches_are_named() -> None:
    with pytest.raises(ImplementationError) as info:
        RpcServer(Svc, Mismatched())
    text = str(info.value)
    assert "add() does not accept parameter(s) b" in text
    assert "name() does not accept parameter(s) who" in text
    assert "name() requires parameter(s) whom" in text
    assert "ping() requires parameter(s) loud" in text


def test_async_methods_are_served_on_a_private_loop() -> None:
    with serve_pipe(Svc, Async()) as proxy:
        assert proxy.name(who="x") == "x"
        assert proxy.add(a=1.0, b=2.0) == 3.0
