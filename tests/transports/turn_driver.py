"""An in-memory turn-per-request driver: the HTTP shape without HTTP.

Each request (a unary call, a stream's start, one stream turn) goes straight to the server
core's turn functions (``_core/turns.py``) of a *fresh* ``Dispatcher``, built anew for every
request as another process would build it; between turns the stream call exists only as the
sealed token the client echoes. The client side is the ordinary ``RpcConnection`` and
``StreamSession`` over this driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from vgi_rpc._core.calls import HmacSealer, Sealer
from vgi_rpc._core.dispatch import Dispatcher
from vgi_rpc._core.framing import decode_messages, split_streams
from vgi_rpc._core.ipc import Items, StreamWriter
from vgi_rpc._core.turns import Body, exchange_turn, init_turn

Messages = list[tuple[bytes | bytearray, bool]]


def frames(body: bytes | Body) -> list[Messages]:
    """Every IPC stream of a body, as framed messages."""
    return split_streams(body if isinstance(body, bytes) else b"".join(bytes(memoryview(c)) for c in body))


class TurnDriver:
    """Implements ``vgi_rpc.client.Driver`` with one in-memory request per turn."""

    turn_per_request = True

    def __init__(self, make_dispatcher: Callable[[], Dispatcher], sealer: Sealer | None = None) -> None:
        self.make_dispatcher = make_dispatcher
        self.sealer = sealer or HmacSealer(b"turn-driver-test-key-0123456789")
        self.requests = 0
        self.tokens: list[bytes] = []  # every state token the client sent, in order

    def post_init(self, request: bytes) -> list[Messages]:
        self.requests += 1
        return frames(init_turn(self.make_dispatcher(), frames(request)[0], self.sealer).body)

    def post_exchange(self, request: bytes) -> list[Messages]:
        self.requests += 1
        return frames(exchange_turn(self.make_dispatcher(), frames(request)[0], self.sealer).body)

    def unary(self, request: bytes, what: str, route: tuple[str, str] | None = None) -> Messages:
        (reply,) = self.post_init(request)
        return reply

    def open_stream(self, request: bytes, has_header: bool, what: str) -> TurnCall:
        return TurnCall(self, self.post_init(request), has_header)

    def close(self) -> None:
        pass


class TurnCall:
    """One stream call: the start's response is split into the header and the init items."""

    def __init__(self, driver: TurnDriver, streams: list[Messages], has_header: bool) -> None:
        self.driver = driver
        decoded = [decode_messages(s)[1] for s in streams]
        self.header_items: Items = decoded.pop(0) if has_header and decoded else []
        self._init: Items = decoded[0] if decoded else []

    def init_items(self) -> Items:
        return self._init

    def turn(self, batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None, stop: Any) -> tuple[Items, bool]:
        from vgi_rpc._core import keys

        if metadata and keys.STREAM_STATE in metadata:
            self.driver.tokens.append(metadata[keys.STREAM_STATE])
        writer = StreamWriter(batch.schema)
        writer.write(batch, metadata)
        writer.end()
        (reply,) = self.driver.post_exchange(b"".join(bytes(memoryview(c)) for c in writer.take()))
        return decode_messages(reply)[1], True

    def close(self, output_ended: bool) -> Items:
        return []  # closing a turn-per-request stream sends nothing
