"""Stream state tokens for the HTTP transport: encrypted, authenticated, bound to the caller, expiring.

Between HTTP requests a stream call lives only in the token the client echoes back. A
:class:`TokenSealer` holds the key; :meth:`TokenSealer.for_principal` gives the
``vgi_rpc._core.calls.Sealer`` for one caller. Token layout (raw bytes; the caller base64s them)::

    version (1 = 0x11) | nonce (12, random) | AES-256-GCM( flags (1) | expiry (8, >d, unix s) | body ) + tag (16)

The associated data is ``version | 0x00`` (anonymous) or ``version | 0x01 | principal (UTF-8)``, so
the principal is authenticated but never stored. ``flags & 1`` means *body* is zlib-compressed
(done when it is smaller: sealed states repeat schemas). The AES key is HKDF-SHA256 of the secret.

Threat model: the client holds the token and may read, alter, truncate, replay or hand it to
someone else. It cannot read the state, forge or alter a token, use another caller's token, or use
one after its expiry; it *can* replay its own token until then (the server keeps no stream state).
Random 96-bit nonces: rotate a shared key well before 2**32 tokens.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._core.calls import Sealer

__all__ = ["TokenSealer"]

_VERSION: Final = b"\x11"
_NONCE: Final = 12
_TAG: Final = 16
_HEAD: Final = struct.Struct(">Bd")  # flags, expiry
_ZLIB: Final = 0x01
_MIN_LEN: Final = 1 + _NONCE + _TAG + _HEAD.size
_INFO: Final = b"vgi-rpc stream token v1 (AES-256-GCM)"


class TokenSealer:
    """The key, lifetime and clock of a deployment's stream tokens.

    *key* is a secret of at least 16 bytes; the AES-256 key is derived from it with HKDF-SHA256
    (so a secret shared with other uses, e.g. an ``HmacSealer``, gives an unrelated key).
    ``key=None`` draws a random per-process secret: tokens then work only in this process, so
    several processes serving one deployment (workers, replicas) must be given the same *key*.
    Tokens are valid for *ttl* seconds after sealing, as measured by *clock*.

    Key rotation: *key* seals; tokens sealed with any of *previous_keys* still unseal (and the
    stream goes on under the new key from its next turn). Deploy the new key with the old one in
    *previous_keys* everywhere, and drop the old one after a token lifetime (*ttl*).
    """

    def __init__(
        self,
        key: bytes | None = None,
        *,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        previous_keys: Sequence[bytes] = (),
    ) -> None:
        if key is None:
            key = os.urandom(32)
        if not ttl > 0:
            raise ValueError("TokenSealer needs a positive ttl")
        self._aead = _aead(key)
        self._verifiers = (self._aead, *(_aead(k) for k in previous_keys))
        self.ttl = ttl
        self.clock = clock

    def for_principal(self, principal: str | None) -> Sealer:
        """A sealer whose tokens only this *principal* (``None``: anonymous callers) can unseal."""
        if principal is None:
            ad = _VERSION + b"\x00"
        else:
            ad = _VERSION + b"\x01" + principal.encode("utf-8", "surrogatepass")
        return _BoundSealer(self._aead, self._verifiers, self.ttl, self.clock, ad)


def _aead(key: bytes) -> AESGCM:
    if len(key) < 16:
        raise ValueError("TokenSealer needs keys of at least 16 bytes")
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key))


class _BoundSealer:
    """``TokenSealer`` bound to one principal's associated data."""

    __slots__ = ("_ad", "_aead", "_clock", "_ttl", "_verifiers")

    def __init__(
        self, aead: AESGCM, verifiers: tuple[AESGCM, ...], ttl: float, clock: Callable[[], float], ad: bytes
    ) -> None:
        self._aead = aead
        self._verifiers = verifiers
        self._ttl = ttl
        self._clock = clock
        self._ad = ad

    def seal(self, payload: bytes) -> bytes:
        """Compress when it helps, stamp the expiry, encrypt."""
        flags = 0
        packed = zlib.compress(payload, 1)
        if len(packed) < len(payload):
            flags, payload = _ZLIB, packed
        expiry = self._clock() + self._ttl
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, _HEAD.pack(flags, expiry) + payload, self._ad)
        return _VERSION + nonce + sealed

    def unseal(self, token: bytes) -> bytes:
        """The payload of a token sealed for this principal, with this key, and not yet expired."""
        if len(token) < _MIN_LEN:
            raise ValueError(f"not a stream token of this server ({len(token)} bytes is too short)")
        if token[:1] != _VERSION:
            raise ValueError(f"not a stream token of this server (unknown version 0x{token[0]:02x})")
        plain = None
        for aead in self._verifiers:  # the current key first, then the previous ones (rotation)
            try:
                plain = aead.decrypt(token[1 : 1 + _NONCE], token[1 + _NONCE :], self._ad)
                break
            except InvalidTag:
                continue
        if plain is None:
            raise ValueError(
                "the stream token failed authentication (altered, made with another key, or for another caller)"
            )
        flags, expiry = _HEAD.unpack_from(plain)
        late = self._clock() - expiry
        if late > 0:
            raise ValueError(f"stream token expired {late:.1f} s ago")
        body = plain[_HEAD.size :]
        return zlib.decompress(body) if flags & _ZLIB else body
