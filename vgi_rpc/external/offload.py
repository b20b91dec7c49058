"""``ExternalOffload``: the core's Offload seam over object storage (WIRE.md section 10).

Out: a batch with rows whose buffers reach ``externalize_threshold_bytes`` is written as one IPC
stream (schema, the batch with its metadata, EOS; for a stream output turn, the turn's log batches
before it), hashed (SHA-256 of those uncompressed
bytes), optionally compressed, uploaded, and replaced by a zero-row pointer batch carrying
``vgi_rpc.location`` and ``vgi_rpc.location.sha256`` (plus the batch's other metadata, so
stream tokens added later ride on the pointer as on any data batch).

In: a batch carrying ``vgi_rpc.location`` is fetched (see ``fetch.py``), checked against its
hash, and must hold exactly one data batch on the pointer's schema, optionally after log
batches; a pointer inside the object is refused. The data batch gets the pointer's other
metadata and ``vgi_rpc.location.fetch_ms`` / ``vgi_rpc.location.source``.
"""

from __future__ import annotations

import gzip
import hashlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from .._core import keys
from .._core.ipc import Items, decode_stream, empty_batch, encode_stream
from ..errors import ExternalLocationError, IPCError
from .config import Compression, ExternalLocationConfig, redacted
from .fetch import Fetcher

__all__ = ["ExternalOffload", "compress", "object_key"]

_LOCATION_KEYS = (keys.LOCATION, keys.LOCATION_SHA256)


class ExternalOffload:
    """Big batches out as pointers to uploaded objects, pointers in as the batches they name.

    *max_upload_bytes* caps the buffer size of one uploaded batch (the HTTP server's
    ``max_externalized_response_bytes``); a bigger one raises ``RuntimeError`` (as 0.52.2) and
    nothing is uploaded.
    """

    def __init__(self, config: ExternalLocationConfig, *, max_upload_bytes: int | None = None) -> None:
        self.config = config
        self.max_upload_bytes = max_upload_bytes
        self.fetcher = Fetcher(config)
        self.uploaded = 0  # objects written
        self.resolved = 0  # pointers resolved

    def offload(
        self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None
    ) -> tuple[pa.RecordBatch, dict[bytes, bytes] | None]:
        """A pointer batch for a big batch (uploaded), else the batch as it is."""
        md = dict(metadata) if metadata else None
        if not self._wanted(batch):
            return batch, md
        return self._upload(batch.schema, [(batch, md)], batch, md)

    def _wanted(self, batch: pa.RecordBatch) -> bool:
        """Whether *batch* goes to storage: a store, rows, and buffers of at least the threshold."""
        if self.config.storage is None or batch.num_rows == 0:
            return False
        size: int = batch.get_total_buffer_size()
        return size >= self.config.externalize_threshold_bytes

    def _upload(
        self, schema: pa.Schema, items: Items, batch: pa.RecordBatch, md: dict[bytes, bytes] | None
    ) -> tuple[pa.RecordBatch, dict[bytes, bytes]]:
        """Upload *items* as one IPC stream; the pointer batch (carrying *md*) that replaces them."""
        storage = self.config.storage
        assert storage is not None
        size = batch.get_total_buffer_size()
        if self.max_upload_bytes is not None and size > self.max_upload_bytes:
            raise RuntimeError(  # 0.52.2's type and wording; checked before anything is uploaded
                f"Externalised payload exceeds max_externalized_response_bytes ({size} > {self.max_upload_bytes})"
            )
        data = encode_stream(schema, items)
        digest = hashlib.sha256(memoryview(data)).hexdigest()
        body, coding = compress(data, self.config.compression)
        url = storage.upload(body, schema, content_encoding=coding)
        self.uploaded += 1
        pointer = {**(md or {}), keys.LOCATION: url.encode(), keys.LOCATION_SHA256: digest.encode()}
        return empty_batch(schema), pointer

    def offload_turn(self, items: Items) -> Items:
        """A stream turn with a big output batch as one object (its logs, then the batch) behind one pointer."""
        is_log = [bool(md and keys.LOG_LEVEL in md) for _, md in items]
        if is_log.count(False) != 1 or is_log[-1]:  # not the one-batch turn shape: batch by batch
            return [item if log else self.offload(*item) for item, log in zip(items, is_log, strict=True)]
        batch, md = items[-1]
        if not self._wanted(batch):
            return items
        return [self._upload(batch.schema, items, batch, md)]

    def resolve(self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None) -> Items:
        """What a pointer batch stands for (its logs, then its data batch); other batches as they are."""
        md = dict(metadata) if metadata else None
        if not md or keys.LOCATION not in md:
            return [(batch, md)]
        url = md[keys.LOCATION].decode("utf-8", "replace")
        expected = md.get(keys.LOCATION_SHA256, b"").decode("ascii", "replace").lower()
        start = time.monotonic()
        data, _ = self.fetcher.get(url)
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise ExternalLocationError(f"the object at {redacted(url)} does not match its SHA-256")
        items = _contents(data, batch.schema, url)
        rest = {k: v for k, v in md.items() if k not in _LOCATION_KEYS}
        data_batch, inner = items[-1]
        rest.update(inner or {})
        rest[keys.LOCATION_FETCH_MS] = f"{(time.monotonic() - start) * 1000:.1f}".encode()
        rest[keys.LOCATION_SOURCE] = redacted(url).encode()
        self.resolved += 1
        return [*items[:-1], (data_batch, rest)]

    def close(self) -> None:
        """Close the fetcher's HTTP connections."""
        self.fetcher.close()


def _contents(data: bytes, schema: pa.Schema, url: str) -> Items:
    """The object's batches: logs, then exactly one data batch on *schema*."""
    try:
        got_schema, items = decode_stream(data)
    except IPCError as exc:
        raise ExternalLocationError(f"the object at {redacted(url)} is not an Arrow IPC stream: {exc}") from None
    if not got_schema.equals(schema):
        raise ExternalLocationError(
            f"the object at {redacted(url)} has schema {got_schema}, not the pointer's {schema}"
        )
    data_items = []
    for item in items:
        item_md = item[1] or {}
        if keys.LOCATION in item_md:
            raise ExternalLocationError(f"the object at {redacted(url)} holds another pointer (nested)")
        if keys.LOG_LEVEL not in item_md:
            data_items.append(item)
    if len(data_items) != 1 or items[-1] is not data_items[0]:
        raise ExternalLocationError(
            f"the object at {redacted(url)} must hold exactly one data batch, last; it holds {len(data_items)}"
        )
    return items


def compress(data: Any, compression: Compression | None) -> tuple[bytes, str | None]:
    """*data* compressed per *compression*, and the ``Content-Encoding`` to store it with."""
    if compression is None:
        return bytes(memoryview(data)), None
    if compression.algorithm == "gzip":
        return gzip.compress(memoryview(data), compresslevel=compression.level, mtime=0), "gzip"
    import zstandard

    return zstandard.ZstdCompressor(level=compression.level).compress(memoryview(data)), "zstd"


def object_key(prefix: str) -> str:
    """A fresh object name under *prefix*."""
    return f"{prefix}{uuid.uuid4().hex}.arrow"
