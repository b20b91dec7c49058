"""A service with big results, big parameters and streams of big batches, for external-storage tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from vgi_rpc import CallContext, ExchangeState, Level, OutputCollector, ProducerState, Stream
from vgi_rpc.rpc import AnnotatedBatch

BLOCK_SCHEMA = pa.schema([pa.field("block", pa.binary())])


def block(size: int, seed: int = 0) -> bytes:
    """*size* bytes that do not compress to nothing (so compressed objects stay sizeable)."""
    pattern = bytes((seed + i * 7919) % 251 for i in range(4096))
    return (pattern * (size // len(pattern) + 1))[:size]


class Blobs(Protocol):
    def make(self, size: int) -> bytes: ...
    def size_of(self, data: bytes) -> int: ...
    def blocks(self, size: int, count: int) -> Stream[ProducerState]: ...
    def sizes(self) -> Stream[ExchangeState]: ...


@dataclass
class BlocksState(ProducerState):
    size: int
    count: int
    sent: int = 0

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        if self.sent == self.count:
            out.finish()
            return
        out.client_log(Level.INFO, f"block {self.sent}")
        out.emit(pa.record_batch([pa.array([block(self.size, self.sent)], pa.binary())], schema=BLOCK_SCHEMA))
        self.sent += 1


@dataclass
class SizesState(ExchangeState):
    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        sizes = [len(b) for b in input.batch.column(0).to_pylist()]
        # the answer is as big as the input: a big input gets a big answer back
        out.emit(pa.record_batch([pa.array([block(sum(sizes))], pa.binary())], schema=BLOCK_SCHEMA))


class BlobsImpl:
    def make(self, size: int, ctx: CallContext) -> bytes:
        ctx.client_log(Level.INFO, f"making {size} bytes")
        return block(size)

    def size_of(self, data: bytes) -> int:
        return len(data)

    def blocks(self, size: int, count: int) -> Stream[BlocksState]:
        return Stream(output_schema=BLOCK_SCHEMA, state=BlocksState(size, count))

    def sizes(self) -> Stream[SizesState]:
        return Stream(output_schema=BLOCK_SCHEMA, state=SizesState(), input_schema=BLOCK_SCHEMA)
