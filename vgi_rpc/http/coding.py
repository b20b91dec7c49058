"""HTTP body codings (zstd, gzip), both ways, for both ends: compress, and decompress within a limit.

Decompression stops as soon as the output passes the limit, so a small body that would expand
to gigabytes is refused without ever being expanded in memory.
"""

from __future__ import annotations

import io
import zlib

import zstandard

__all__ = ["BodyTooLarge", "compress", "decompress"]

_ZSTD = zstandard.ZstdCompressor(level=1, write_content_size=True)


class BodyTooLarge(Exception):
    """A body that decodes to more than the limit."""


def compress(coding: str, data: bytes) -> bytes:
    """*data* in *coding* (``zstd`` or ``gzip``; level 1: these bodies are Arrow, mostly binary)."""
    if coding == "zstd":
        return _ZSTD.compress(data)
    deflater = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing
    return deflater.compress(data) + deflater.flush()


def decompress(coding: str, data: bytes, limit: int | None) -> bytes:
    """Decode *data*; ``BodyTooLarge`` past *limit* bytes, ``ValueError`` when it does not decode."""
    cap = (limit if limit is not None else 1 << 40) + 1
    try:
        if coding == "zstd":
            out = bytearray()
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
                while chunk := reader.read(min(1 << 20, cap - len(out))):
                    out += chunk
                    if len(out) >= cap:
                        raise BodyTooLarge
            return bytes(out)
        inflater = zlib.decompressobj(wbits=31)  # gzip
        plain = inflater.decompress(data, cap)
    except (zstandard.ZstdError, zlib.error) as exc:
        raise ValueError(f"the {coding} body does not decode: {exc}") from None
    if len(plain) >= cap or inflater.unconsumed_tail:
        raise BodyTooLarge
    if not inflater.eof:
        raise ValueError("the gzip body is truncated")
    return plain
