"""The async examples as a user writes them: an async twin types the proxy for ``mypy --strict``.

``AsyncCountdown`` is the twin of ``CountdownService`` (unary methods ``async def`` with the same
parameters and result, stream methods returning ``AsyncStreamSession``); passing it as ``twin=``
makes the proxy an ``AsyncCountdown``, so awaited results and streamed batches are typed. The
``_misuse`` function is never called: its ``type: ignore`` comments fail the check
(``warn_unused_ignores``) the day the proxy falls back to ``Any``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, assert_type

from tests.typing.stream_examples import CountdownImpl, CountdownService
from vgi_rpc import AnnotatedBatch
from vgi_rpc.aio import AsyncStreamSession, aserve_pipe


class Adder(Protocol):
    def add(self, a: float, b: float) -> float: ...
    def label(self, n: int, unit: str = "s") -> str: ...


class AsyncAdder(Protocol):
    async def add(self, a: float, b: float) -> float: ...
    async def label(self, n: int, unit: str = "s") -> str: ...


class AdderImpl:
    def add(self, a: float, b: float) -> float:
        return a + b

    async def label(self, n: int, unit: str = "s") -> str:  # served on the server's private loop
        return f"{n} {unit}"


class AsyncCountdown(Protocol):
    def countdown(self, n: int) -> AsyncStreamSession: ...
    def accumulate(self, initial: float) -> AsyncStreamSession: ...
    def countdown_with_header(self, n: int) -> AsyncStreamSession: ...


async def add_and_label() -> tuple[float, str]:
    """Unary calls through the twin: the awaited results are typed."""
    async with aserve_pipe(Adder, AdderImpl(), twin=AsyncAdder) as proxy:
        total = await proxy.add(a=1.0, b=2.0)
        assert_type(total, float)
        text = await proxy.label(n=3)
        assert_type(text, str)
        return total, text


async def countdown_and_sum(n: int) -> tuple[list[int], float]:
    """A producer with ``async for`` and an exchange with ``async with``."""
    async with aserve_pipe(CountdownService, CountdownImpl(), twin=AsyncCountdown) as proxy:
        values: list[int] = []
        async for batch in proxy.countdown(n=n):
            assert_type(batch, AnnotatedBatch)
            values.extend(batch.batch.column("value").to_pylist())
        async with proxy.accumulate(initial=0.0) as session:
            assert_type(session, AsyncStreamSession)
            out = await session.exchange(AnnotatedBatch.from_pydict({"value": [1.5, 2.0]}))
            assert_type(out, AnnotatedBatch)
        return values, out.batch.column("sum")[0].as_py()


async def untyped() -> Any:
    """Without a twin the proxy is Any: it works, and mypy checks nothing."""
    async with aserve_pipe(Adder, AdderImpl()) as proxy:
        return await proxy.add(a=1.0, b=2.0)


async def _misuse() -> None:  # pragma: no cover - type-checked only
    async with aserve_pipe(Adder, AdderImpl(), twin=AsyncAdder) as proxy:
        await proxy.add(a="1", b=2.0)  # type: ignore[arg-type]
        not_awaited: float = proxy.add(a=1.0, b=2.0)  # type: ignore[assignment]
        await proxy.missing()  # type: ignore[attr-defined]
        del not_awaited


def main() -> None:
    """Run the examples."""
    print(asyncio.run(add_and_label()), asyncio.run(countdown_and_sum(3)), asyncio.run(untyped()))
