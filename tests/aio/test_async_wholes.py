"""The async client reads a big bytes result into its own ``bytes`` object, as the sync reader does
(``_core/wholes.py``; tests/core/test_wholes.py for the sync side)."""

from __future__ import annotations

import asyncio

import pyarrow as pa

from tests.aio.factories import run
from tests.core.test_wholes import BIG, _mixed, _stream
from tests.services import Everything, EverythingImpl
from vgi_rpc._core.framing import decode_messages
from vgi_rpc._core.wholes import Hollow, first_value
from vgi_rpc.aio import aserve_pipe
from vgi_rpc.transports.apipe import read_messages


def _fed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1 << 20)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_the_async_reader_takes_big_values_out_as_the_sync_one_does() -> None:
    async def body() -> None:
        batch = _mixed(BIG)
        messages = await read_messages(_fed(_stream(batch)), "test", wholes=True)
        message = messages[1][0]
        assert type(message) is Hollow and sorted(message.values) == [3, 5]
        got = decode_messages(messages)[1][0][0]
        assert got.equals(batch)
        assert first_value(got.column(3)) is message.values[3]
        plain = await read_messages(_fed(_stream(batch)), "test")
        assert not any(type(m) is Hollow for m, _ in plain)
        assert decode_messages(plain)[1][0][0].equals(batch)

    run(body)


def test_an_async_echo_of_big_bytes() -> None:
    async def body() -> None:
        async with aserve_pipe(Everything, EverythingImpl()) as proxy:
            payload = bytes(range(256)) * (3 << 12) + b"tail"  # 3 MiB and 4 bytes
            assert await proxy.echo_bytes(value=payload) == payload
            assert await proxy.echo_str(value="after") == "after"

    run(body)


def test_a_big_value_in_a_many_row_batch_is_read_whole() -> None:
    async def body() -> None:
        batch = pa.RecordBatch.from_pydict({"b": pa.array([BIG, b"x"], pa.binary())})
        messages = await read_messages(_fed(_stream(batch)), "test", wholes=True)
        assert not any(type(m) is Hollow for m, _ in messages)
        assert decode_messages(messages)[1][0][0].equals(batch)

    run(body)
