"""External storage options: where big batches go, how they are compressed, fetched and checked.

Frozen config objects (no I/O here): ``ExternalLocationConfig`` is what ``RpcServer``,
``connect``, ``serve_pipe``, ``http_connect`` and ``WorkerPool.connect`` take as
``external_location=``; ``ExternalStorage`` and ``UploadUrlProvider`` are the two tiny
protocols a storage backend implements (``S3Storage`` and ``GCSStorage`` do both).
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import pyarrow as pa

__all__ = [
    "Compression",
    "ExternalLocationConfig",
    "ExternalStorage",
    "FetchConfig",
    "UploadUrl",
    "UploadUrlProvider",
    "https_only_validator",
]


@runtime_checkable
class ExternalStorage(Protocol):
    """Where externalized batches are written: one object per batch, readable at the returned URL."""

    def upload(self, data: bytes, schema: pa.Schema, *, content_encoding: str | None = None) -> str:
        """Store *data* (one IPC stream, coded with *content_encoding* if given); the URL to fetch it from.

        The store must send *content_encoding* back as ``Content-Encoding`` when the object is read.
        """


@dataclass(frozen=True, slots=True)
class UploadUrl:
    """A pre-signed pair: PUT the IPC bytes to ``upload_url``, point a request at ``download_url``."""

    upload_url: str
    download_url: str
    expires_at: datetime.datetime


@runtime_checkable
class UploadUrlProvider(Protocol):
    """Vends upload URLs for clients that send big inputs (``make_wsgi_app(upload_url_provider=...)``)."""

    def generate_upload_url(self, schema: pa.Schema) -> UploadUrl:
        """A fresh pre-signed upload / download URL pair."""


@dataclass(frozen=True, slots=True)
class Compression:
    """Whole-object compression of uploaded batches: ``"zstd"`` (needs ``zstandard``) or ``"gzip"``."""

    algorithm: Literal["zstd", "gzip"] = "zstd"
    level: int = 3

    def __post_init__(self) -> None:
        if self.algorithm not in ("zstd", "gzip"):
            raise ValueError(f"Compression.algorithm must be 'zstd' or 'gzip', got {self.algorithm!r}")


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """How pointer batches are fetched.

    Attributes:
        parallel_threshold_bytes: Objects at least this big are fetched as parallel ranged GETs
            (when the store answers ``Accept-Ranges: bytes``); smaller ones in one GET.
        chunk_size_bytes: Size of each ranged GET.
        max_parallel_requests: Ranged GETs in flight at once.
        timeout_seconds: Deadline of one fetch (every attempt, redirect and chunk included).
        max_fetch_bytes: Largest object (as stored, before decompression) a reader accepts.
        max_decompressed_bytes: Largest decompressed object (None: ``max_fetch_bytes``).
        max_redirects: Redirects followed per request (each one checked by the URL validator).
        speculative_retry_multiplier: Accepted for code written for 0.52.2 (which hedges slow
            chunks); no hedging is done yet.
        max_speculative_hedges: Accepted for 0.52.2 code, as above.

    """

    parallel_threshold_bytes: int = 64 * 1024 * 1024
    chunk_size_bytes: int = 8 * 1024 * 1024
    max_parallel_requests: int = 8
    timeout_seconds: float = 60.0
    max_fetch_bytes: int = 256 * 1024 * 1024
    max_decompressed_bytes: int | None = None
    max_redirects: int = 5
    speculative_retry_multiplier: float = 2.0
    max_speculative_hedges: int = 4

    def __post_init__(self) -> None:
        if self.chunk_size_bytes <= 0 or self.max_parallel_requests <= 0 or self.max_fetch_bytes <= 0:
            raise ValueError("FetchConfig sizes and counts must be positive")
        if self.timeout_seconds <= 0 or self.max_redirects < 0:
            raise ValueError("FetchConfig.timeout_seconds must be positive and max_redirects not negative")

    @property
    def decoded_limit(self) -> int:
        """The cap on decompressed bytes."""
        return self.max_decompressed_bytes if self.max_decompressed_bytes is not None else self.max_fetch_bytes


def https_only_validator(url: str) -> None:
    """The default URL policy: only ``https://`` URLs with a host; raises ``ValueError`` otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"only https URLs are allowed for external locations, got {redacted(url)!r}")


def redacted(url: str) -> str:
    """*url* without its query string (signed URLs carry credentials there)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class ExternalLocationConfig:
    """External storage for batches too big to send inline (see docs/external.md).

    Attributes:
        storage: Where this side uploads big batches (None: resolve pointers only, never upload).
        externalize_threshold_bytes: Batches whose buffers reach this size are uploaded.
        max_retries: Retries of a failed fetch, ``retry_delay_seconds`` apart (at most 2 are made:
            3 attempts in all, as WIRE.md section 10 bounds them).
        retry_delay_seconds: Pause between fetch attempts.
        fetch_config: Fetch options.
        compression: Whole-object compression of uploads (None: uncompressed).
        url_validator: Called with every URL fetched, redirects included; raises to refuse it.
            The default allows https only; None allows anything (a local test server over http).

    """

    storage: ExternalStorage | None = None
    externalize_threshold_bytes: int = 1_048_576
    max_retries: int = 2
    retry_delay_seconds: float = 0.5
    fetch_config: FetchConfig = field(default_factory=FetchConfig)
    compression: Compression | None = None
    url_validator: Callable[[str], None] | None = https_only_validator

    def __post_init__(self) -> None:
        if self.externalize_threshold_bytes <= 0:
            raise ValueError("externalize_threshold_bytes must be positive")
        if self.max_retries < 0 or self.retry_delay_seconds < 0:
            raise ValueError("max_retries and retry_delay_seconds must not be negative")
