"""The Offload seam: a big batch out becomes a pointer batch, a pointer batch in becomes its data.

Shared memory and external storage (S3/GCS) are both an ``Offload``; the core calls it at the
single batch-out and batch-in point of each state machine (server: results and stream output
turns out, request and stream inputs in; client: inputs out, replies in), so no driver does. The
per-batch custom metadata is what marks a pointer batch. ``None`` (the default everywhere) means
no offload: batches pass as they are and the core skips the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import pyarrow as pa

from .ipc import Items

__all__ = ["Offload"]


class Offload(Protocol):
    """Replaces big batches by pointer batches on the way out, and back on the way in."""

    def offload(
        self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None
    ) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None]:
        """The batch to send in place of *batch* (itself when it stays inline)."""

    def offload_turn(self, items: Items) -> Items:
        """The items to send for one stream output turn (its log batches and its output batch).

        Shared memory offloads the output batch alone; external storage puts the whole turn in
        one object behind one pointer (WIRE.md section 10).
        """

    def resolve(self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None) -> Items:
        """The batches a received batch stands for: itself unless it is a pointer.

        A resolved object may hold log batches before its data batch; they are handed on in order.
        """
