"""Fetching an externalized object: URL policy on every hop, retries, ranged GETs, size caps, decoding.

Invariants: every URL (the pointer's and each redirect's) passes the validator before it is
requested; bytes are read raw (never decoded by the HTTP library) and counted against
``max_fetch_bytes`` as they arrive, then decoded per the store's ``Content-Encoding`` under
``max_decompressed_bytes``; a signed URL's query string never appears in an error or a log.
httpx (and zstandard for zstd objects) are imported on first use.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import urllib.parse
import zlib
from typing import TYPE_CHECKING, Any

from ..errors import ExternalLocationError
from .config import ExternalLocationConfig, redacted

if TYPE_CHECKING:
    import httpx

__all__ = ["Fetcher", "decode_body"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_READ = 1 << 20
_MAX_RETRIES = 2  # at most 3 attempts, whatever the config asks


class _Retryable(ExternalLocationError):
    """A failure worth another attempt (a transport error, a 5xx)."""


class Fetcher:
    """Fetches objects for one ``ExternalLocationConfig``; safe to share between threads."""

    def __init__(self, config: ExternalLocationConfig) -> None:
        self.config = config
        self.fetch = config.fetch_config
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """The HTTP client (created on first use: httpx is an optional dependency)."""
        with self._lock:
            if self._client is None:
                import httpx

                limits = httpx.Limits(max_connections=max(self.fetch.max_parallel_requests, 4))
                self._client = httpx.Client(follow_redirects=False, limits=limits, timeout=self.fetch.timeout_seconds)
            return self._client

    def close(self) -> None:
        """Close the HTTP client's connections (a later fetch opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def get(self, url: str) -> tuple[bytes, str]:
        """The decoded bytes of the object at *url* and the final URL (at most 3 attempts)."""
        deadline = time.monotonic() + self.fetch.timeout_seconds
        attempts = min(self.config.max_retries, _MAX_RETRIES) + 1
        for attempt in range(attempts):
            try:
                raw, coding, final = self._get_once(url, deadline)
                return decode_body(raw, coding, self.fetch.decoded_limit), final
            except _Retryable as exc:
                if attempt + 1 == attempts or time.monotonic() + self.config.retry_delay_seconds >= deadline:
                    raise ExternalLocationError(str(exc)) from exc
                time.sleep(self.config.retry_delay_seconds)
        raise AssertionError("unreachable")

    # -- one attempt ----------------------------------------------------------------------------

    def _get_once(self, url: str, deadline: float) -> tuple[bytes, str, str]:
        first = self.fetch.chunk_size_bytes
        response, final = self._open(url, {"Range": f"bytes=0-{first - 1}"}, deadline)
        try:
            coding = response.headers.get("content-encoding", "").strip().lower()
            total = _total_size(response)
            if total is not None and total > self.fetch.max_fetch_bytes:
                raise ExternalLocationError(
                    f"the object at {redacted(url)} is {total} bytes, over max_fetch_bytes "
                    f"({self.fetch.max_fetch_bytes})"
                )
            head = self._read(response, url, self.fetch.max_fetch_bytes)
        finally:
            response.close()
        if response.status_code == 200 or total is None or len(head) >= total:
            _check_length(response, head, url)
            return head, coding, final
        if total >= self.fetch.parallel_threshold_bytes:
            rest = self._ranges(final, len(head), total, deadline)
        else:
            rest = [self._range(final, len(head), total - 1, deadline)]
        body = b"".join([head, *rest])
        if len(body) != total:
            raise ExternalLocationError(f"the object at {redacted(url)} is truncated: {len(body)} of {total} bytes")
        return body, coding, final

    def _ranges(self, url: str, start: int, total: int, deadline: float) -> list[bytes]:
        step = self.fetch.chunk_size_bytes
        spans = [(s, min(s + step, total) - 1) for s in range(start, total, step)]
        workers = min(self.fetch.max_parallel_requests, len(spans))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="vgi_rpc-fetch") as pool:
            return list(pool.map(lambda span: self._range(url, span[0], span[1], deadline), spans))

    def _range(self, url: str, start: int, end: int, deadline: float) -> bytes:
        response, _ = self._open(url, {"Range": f"bytes={start}-{end}"}, deadline)
        try:
            if response.status_code != 206:
                raise ExternalLocationError(f"a ranged GET of {redacted(url)} answered {response.status_code}")
            data = self._read(response, url, end - start + 1)
        finally:
            response.close()
        if len(data) != end - start + 1:
            raise ExternalLocationError(
                f"the object at {redacted(url)} is truncated: bytes {start}-{end} came back as {len(data)} bytes"
            )
        return data

    def _open(self, url: str, headers: dict[str, str], deadline: float) -> tuple[httpx.Response, str]:
        """Send a GET, following redirects by hand (each target validated); the open response and its URL."""
        import httpx

        headers = {**headers, "Accept-Encoding": "zstd, gzip"}  # stored bytes as they are: we decode
        for _ in range(self.fetch.max_redirects + 1):
            self._validate(url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExternalLocationError(
                    f"fetching {redacted(url)} overran timeout_seconds ({self.fetch.timeout_seconds})"
                )
            try:
                request = self.client.build_request("GET", url, headers=headers, timeout=remaining)
                response = self.client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise _Retryable(f"fetching {redacted(url)} failed: {type(exc).__name__}: {exc}") from None
            if response.status_code in _REDIRECTS and "location" in response.headers:
                response.close()
                url = urllib.parse.urljoin(url, response.headers["location"])
                continue
            if response.status_code in (200, 206):
                return response, url
            response.close()
            status = response.status_code
            text = f"fetching {redacted(url)} answered HTTP {status}"
            if status == 404:
                text += " (the object does not exist, or has expired)"
            raise (_Retryable if status in _RETRY_STATUS else ExternalLocationError)(text)
        raise ExternalLocationError(
            f"fetching {redacted(url)}: more than max_redirects ({self.fetch.max_redirects}) redirects"
        )

    def _validate(self, url: str) -> None:
        validator = self.config.url_validator
        if validator is None:
            return
        try:
            validator(url)
        except Exception as exc:
            raise ExternalLocationError(f"the URL policy refused {redacted(url)}: {exc}") from None

    def _read(self, response: httpx.Response, url: str, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_raw(_READ):
                size += len(chunk)
                if size > limit:
                    raise ExternalLocationError(
                        f"the object at {redacted(url)} is over max_fetch_bytes ({self.fetch.max_fetch_bytes})"
                    )
                chunks.append(chunk)
        except _httpx_errors() as exc:
            raise _Retryable(f"reading {redacted(url)} failed: {type(exc).__name__}") from None
        return b"".join(chunks)


def _httpx_errors() -> type[Exception]:
    import httpx

    return httpx.HTTPError


def _total_size(response: httpx.Response) -> int | None:
    """The whole object's size: from ``Content-Range`` on a 206, ``Content-Length`` on a 200."""
    if response.status_code == 206:
        _, _, total = response.headers.get("content-range", "").rpartition("/")
        return int(total) if total.isdigit() else None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _check_length(response: httpx.Response, body: bytes, url: str) -> None:
    length = response.headers.get("content-length", "")
    if response.status_code == 200 and length.isdigit() and int(length) != len(body):
        raise ExternalLocationError(f"the object at {redacted(url)} is truncated: {len(body)} of {length} bytes")


def decode_body(raw: bytes, coding: str, limit: int) -> bytes:
    """*raw* decoded per its ``Content-Encoding`` (``zstd``, ``gzip`` or none), at most *limit* bytes."""
    if coding in ("", "identity"):
        if len(raw) > limit:
            raise ExternalLocationError(f"the object is {len(raw)} bytes, over max_decompressed_bytes ({limit})")
        return raw
    try:
        if coding == "zstd":
            out = _unzstd(raw, limit)
        elif coding == "gzip":
            out = _gunzip(raw, limit)
        else:
            raise ExternalLocationError(f"the object's Content-Encoding {coding!r} is not supported (zstd, gzip)")
    except ExternalLocationError:
        raise
    except Exception as exc:
        raise ExternalLocationError(f"the {coding} object does not decode: {exc}") from None
    return out


def _too_big(coding: str, limit: int) -> ExternalLocationError:
    return ExternalLocationError(f"the {coding} object decodes to more than max_decompressed_bytes ({limit})")


def _unzstd(raw: bytes, limit: int) -> bytes:
    import zstandard

    reader: Any = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    out = bytearray()
    while True:
        chunk = reader.read(_READ)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise _too_big("zstd", limit)


def _gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    out = inflater.decompress(raw, limit + 1)
    if len(out) > limit:
        raise _too_big("gzip", limit)
    if not inflater.eof:
        raise ExternalLocationError("the gzip object is truncated")
    return out
