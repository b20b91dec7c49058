"""Reading raw IPC streams off a ByteStream in tests (what a peer that is not our client sees)."""

from __future__ import annotations

import pyarrow as pa

from vgi_rpc._core.framing import decode_messages
from vgi_rpc._core.ipc import Items
from vgi_rpc._core.longstream import ByteStream, frame_reader


def read_stream(stream: ByteStream) -> tuple[pa.Schema, Items] | None:
    """The next whole IPC stream on *stream*, decoded; None at a clean end of input."""
    messages = frame_reader(stream).read_messages()
    return None if messages is None else decode_messages(messages)
