"""The async twin: checked against the Protocol at connect time; the typed examples run for real."""

from __future__ import annotations

import asyncio
from typing import Protocol

import pytest

from tests.aio.factories import run
from tests.typing.async_examples import Adder, AdderImpl, add_and_label, countdown_and_sum, untyped
from vgi_rpc.aio import AsyncStreamSession, aserve_pipe


def test_the_typed_examples_run() -> None:
    assert asyncio.run(add_and_label()) == (3.0, "3 s")
    assert asyncio.run(countdown_and_sum(3)) == ([3, 2, 1], 3.5)
    assert asyncio.run(untyped()) == 3.0


class SyncMethods(Protocol):
    def add(self, a: float, b: float) -> float: ...
    def label(self, n: int, unit: str = "s") -> str: ...


class WrongTypes(Protocol):
    async def add(self, a: int, b: float) -> float: ...
    async def label(self, count: int, unit: str = "s") -> str: ...
    async def extra(self) -> None: ...


class MissingOne(Protocol):
    async def add(self, a: float, b: float) -> int: ...


class StreamAsAsync(Protocol):
    async def countdown(self, n: int) -> AsyncStreamSession: ...


def _refusal(twin: type) -> str:
    async def body() -> None:
        async with aserve_pipe(Adder, AdderImpl(), twin=twin):
            pass

    with pytest.raises(TypeError) as info:
        run(body)
    return str(info.value)


def test_a_twin_that_does_not_match_is_refused_naming_every_difference() -> None:
    text = _refusal(SyncMethods)
    assert "add() must be async def" in text and "label() must be async def" in text
    text = _refusal(WrongTypes)
    assert "add() parameter 'a' is <class 'int'>" in text
    assert "label() takes (count, unit), the Protocol (n, unit)" in text
    assert "extra() is not a method of the Protocol" in text
    text = _refusal(MissingOne)
    assert "label() is missing" in text and "add() returns <class 'int'>" in text


def test_stream_methods_of_a_twin_are_plain_def() -> None:
    from tests.typing.stream_examples import CountdownImpl, CountdownService

    async def body() -> None:
        async with aserve_pipe(CountdownService, CountdownImpl(), twin=StreamAsAsync):
            pass

    with pytest.raises(TypeError, match=r"countdown\(\) must be def"):
        run(body)
