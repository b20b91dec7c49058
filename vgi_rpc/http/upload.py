"""Upload URLs vended by the HTTP server (WIRE.md section 10): ``POST {prefix}/__upload_url__/init``.

The request is an Arrow request batch with one ``int64 count`` column (1..100); the answer has one
row per URL pair: ``upload_url`` (PUT the IPC bytes there), ``download_url`` (point a request's
``vgi_rpc.location`` at it) and ``expires_at``. The pairs come from the app's
``upload_url_provider`` (``S3Storage`` and ``GCSStorage`` are providers).
"""

from __future__ import annotations

import datetime
from typing import Final

import pyarrow as pa

from .._core.dispatch import Dispatcher, Reply
from .._core.framing import decode_messages
from ..errors import MalformedStreamError
from ..external.config import UploadUrlProvider

__all__ = ["UPLOAD_URL_SCHEMA", "UploadUrlVendor"]

UPLOAD_URL_SCHEMA: Final = pa.schema(
    [
        pa.field("upload_url", pa.utf8()),
        pa.field("download_url", pa.utf8()),
        pa.field("expires_at", pa.timestamp("us", tz="UTC")),
    ]
)
MAX_COUNT: Final = 100


class UploadUrlVendor:
    """Answers upload-URL requests from a provider; refusals are error replies like any request's."""

    def __init__(self, provider: UploadUrlProvider, dispatcher: Dispatcher) -> None:
        self.provider = provider
        self.dispatcher = dispatcher

    def __call__(self, messages: list[tuple[bytes | bytearray | memoryview, bool]]) -> Reply:
        """The reply to one ``__upload_url__/init`` request."""
        try:
            _, items = decode_messages(messages)
        except MalformedStreamError as exc:
            return self.dispatcher.refuse("MalformedStreamError", str(exc))
        batch = items[0][0] if items else None
        if batch is None or batch.num_rows != 1 or "count" not in batch.schema.names:
            return self.dispatcher.refuse("TypeError", "__upload_url__ takes one int64 'count' parameter")
        count = batch.column("count")[0].as_py()
        if not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            return self.dispatcher.refuse("ValueError", f"count must be between 1 and {MAX_COUNT}, got {count!r}")
        try:
            pairs = [self.provider.generate_upload_url(pa.schema([])) for _ in range(count)]
        except Exception as exc:  # the provider's failure is the call's error, as any method's
            reply = self.dispatcher.error_reply(exc, UPLOAD_URL_SCHEMA, None)
            return reply
        columns = [
            pa.array([p.upload_url for p in pairs], pa.utf8()),
            pa.array([p.download_url for p in pairs], pa.utf8()),
            pa.array([_utc(p.expires_at) for p in pairs], pa.timestamp("us", tz="UTC")),
        ]
        return Reply(UPLOAD_URL_SCHEMA, [(pa.RecordBatch.from_arrays(columns, schema=UPLOAD_URL_SCHEMA), None)])


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
