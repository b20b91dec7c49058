"""Dictionary-encoded stream outputs over the async pipe: dictionary batches travel before their record batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from tests.aio.factories import run
from vgi_rpc import CallContext, OutputCollector, ProducerState, Stream, StreamState
from vgi_rpc.aio import aserve_pipe

SCHEMA = pa.schema([pa.field("word", pa.dictionary(pa.int16(), pa.string()))])


class Words(Protocol):
    def words(self, n: int) -> Stream[StreamState]: ...


@dataclass
class WordsState(ProducerState):
    n: int
    i: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.i >= self.n:
            out.finish()
            return
        words = pa.array([f"w{self.i}", "same", f"w{self.i}"]).dictionary_encode().cast(SCHEMA.field(0).type)
        out.emit(pa.RecordBatch.from_arrays([words], schema=SCHEMA))
        self.i += 1


class WordsImpl:
    def words(self, n: int) -> Stream[WordsState]:
        return Stream(output_schema=SCHEMA, state=WordsState(n))


def test_a_dictionary_encoded_producer_over_the_async_pipe() -> None:
    async def body() -> None:
        async with aserve_pipe(Words, WordsImpl()) as proxy:
            got = [b.batch.column("word").to_pylist() async for b in proxy.words(n=3)]
            assert got == [["w0", "same", "w0"], ["w1", "same", "w1"], ["w2", "same", "w2"]]

    run(body)
