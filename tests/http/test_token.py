"""``TokenSealer``: encrypted, principal-bound, expiring stream tokens, alone and with the real core.

Every altered bit, truncation, other key, other principal, expiry and foreign token format is a
``ValueError`` from ``unseal``, which ``Dispatcher.resume`` turns into a ``StreamTokenError``.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from tests.services import StreamService, StreamServiceImpl
from tests.transports.turn_driver import TurnDriver, frames
from vgi_rpc import AnnotatedBatch, RpcConnection, RpcError, RpcServer
from vgi_rpc._core.calls import HmacSealer, StreamCall
from vgi_rpc._core.dispatch import Reply
from vgi_rpc._core.invoke import RequestEncoder
from vgi_rpc._core.ipc import TICK
from vgi_rpc._core.messages import parse_error
from vgi_rpc._core.service import service_spec
from vgi_rpc.http.token import TokenSealer

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the sealer alone -------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [None, "alice", "", "Ünïcode \U0001f600"])
@pytest.mark.parametrize(
    "payload",
    [b"", b"x", os.urandom(300), b"schema " * 2000, os.urandom(100_000)],
    ids=["empty", "one", "random-300", "repetitive-14k", "random-100k"],
)
def test_round_trip(principal: str | None, payload: bytes) -> None:
    sealer = TokenSealer(KEY).for_principal(principal)
    token = sealer.seal(payload)
    assert sealer.unseal(token) == payload
    if len(payload) >= 8:
        assert payload[:16] not in token  # encrypted, not just signed
    assert sealer.seal(payload) != token  # a fresh nonce each time


def test_compression_when_it_helps() -> None:
    sealer = TokenSealer(KEY).for_principal("alice")
    repetitive = b"the same schema bytes again " * 500
    assert len(sealer.seal(repetitive)) < len(repetitive) // 10
    incompressible = os.urandom(1000)
    assert len(sealer.seal(incompressible)) == len(incompressible) + 38  # version, nonce, head, tag


def test_a_sealer_built_without_a_key_draws_its_own() -> None:
    a, b = TokenSealer(), TokenSealer()
    token = a.for_principal(None).seal(b"state")
    assert a.for_principal(None).unseal(token) == b"state"
    with pytest.raises(ValueError, match="failed authentication"):
        b.for_principal(None).unseal(token)


def test_a_short_secret_is_derived_and_a_tiny_one_refused() -> None:
    sixteen = TokenSealer(b"0123456789abcdef").for_principal(None)
    assert sixteen.unseal(sixteen.seal(b"p")) == b"p"
    with pytest.raises(ValueError, match="at least 16 bytes"):
        TokenSealer(b"short")
    with pytest.raises(ValueError, match="positive ttl"):
        TokenSealer(KEY, ttl=0)


@pytest.mark.parametrize("principal", [None, "alice"])
def test_every_flipped_bit_is_refused(principal: str | None) -> None:
    sealer = TokenSealer(KEY).for_principal(principal)
    token = sealer.seal(b"x")
    assert len(token) == 39
    for pos in range(len(token)):
        for bit in range(8):
            bad = token[:pos] + bytes([token[pos] ^ (1 << bit)]) + token[pos + 1 :]
            with pytest.raises(ValueError):
                sealer.unseal(bad)


def test_every_truncation_and_extension_is_refused() -> None:
    sealer = TokenSealer(KEY).for_principal("alice")
    token = sealer.seal(b"some state " * 10)
    for n in range(len(token)):
        with pytest.raises(ValueError, match=r"too short|failed authentication"):
            sealer.unseal(token[:n])
    with pytest.raises(ValueError, match="failed authentication"):
        sealer.unseal(token + b"\x00")


def test_short_and_foreign_version_messages() -> None:
    sealer = TokenSealer(KEY).for_principal(None)
    with pytest.raises(ValueError, match=r"0 bytes is too short"):
        sealer.unseal(b"")
    with pytest.raises(ValueError, match="unknown version 0x05"):
        sealer.unseal(b"\x05" + b"\x00" * 60)


def test_another_key_is_refused() -> None:
    token = TokenSealer(KEY).for_principal("alice").seal(b"state")
    with pytest.raises(ValueError, match="failed authentication"):
        TokenSealer(OTHER_KEY).for_principal("alice").unseal(token)


@pytest.mark.parametrize(
    ("sealed_for", "opened_by"),
    [("alice", "bob"), ("alice", None), (None, "alice"), ("", None), (None, ""), ("alice", "alice ")],
)
def test_another_principal_is_refused(sealed_for: str | None, opened_by: str | None) -> None:
    sealer = TokenSealer(KEY)
    token = sealer.for_principal(sealed_for).seal(b"state")
    with pytest.raises(ValueError, match="failed authentication"):
        sealer.for_principal(opened_by).unseal(token)
    assert sealer.for_principal(sealed_for).unseal(token) == b"state"


def test_expiry_by_the_injected_clock() -> None:
    clock = Clock()
    sealer = TokenSealer(KEY, ttl=60.0, clock=clock).for_principal("alice")
    token = sealer.seal(b"state")
    clock.now += 60.0  # exactly at the expiry: still valid
    assert sealer.unseal(token) == b"state"
    clock.now += 0.25
    with pytest.raises(ValueError, match=r"stream token expired 0\.2 s ago"):
        sealer.unseal(token)
    clock.now += 100
    with pytest.raises(ValueError, match=r"expired 100\.2 s ago"):
        sealer.unseal(token)


def test_expiry_is_checked_only_after_authentication() -> None:
    clock = Clock()
    sealer = TokenSealer(KEY, ttl=1.0, clock=clock)
    token = sealer.for_principal("alice").seal(b"state")
    clock.now += 10
    with pytest.raises(ValueError, match="failed authentication"):
        sealer.for_principal("bob").unseal(token)


def test_hmac_tokens_and_token_sealer_tokens_do_not_mix() -> None:
    hmac_sealer = HmacSealer(KEY)
    token_sealer = TokenSealer(KEY).for_principal(None)
    with pytest.raises(ValueError):
        token_sealer.unseal(hmac_sealer.seal(b"state " * 20))
    with pytest.raises(ValueError):
        hmac_sealer.unseal(token_sealer.seal(b"state " * 20))


# -- with the real core -----------------------------------------------------------------------


def _started_count() -> tuple[RpcServer, StreamCall]:
    server = RpcServer(StreamService, StreamServiceImpl())
    spec = service_spec(StreamService)
    request = RequestEncoder(spec, spec.methods["count"]).encode((), {"n": 3})
    call = server.dispatcher.handle_messages(frames(request)[0])
    assert isinstance(call, StreamCall)
    return server, call


def _refusal(reply: StreamCall | Reply) -> RpcError:
    assert isinstance(reply, Reply)
    (batch, md), *_ = reply.items
    assert batch.num_rows == 0 and md is not None
    return parse_error(md)


def _values(items: Any) -> list[int]:
    return [v for batch, _ in items if batch.num_rows for v in batch.column("i").to_pylist()]


def test_resume_through_the_dispatcher_for_the_right_principal_only() -> None:
    sealer = TokenSealer(KEY)
    server, call = _started_count()
    assert _values(call.step(TICK, None).items) == [0]
    token = call.seal(sealer.for_principal("alice"))

    resumed = server.dispatcher.resume(token, sealer.for_principal("alice"))
    assert isinstance(resumed, StreamCall)
    assert _values(resumed.step(TICK, None).items) == [1]

    for wrong in (
        sealer.for_principal("bob"),
        sealer.for_principal(None),
        TokenSealer(OTHER_KEY).for_principal("alice"),
    ):
        error = _refusal(server.dispatcher.resume(token, wrong))
        assert error.error_type == "StreamTokenError"
        assert "failed authentication" in error.error_message


def test_an_expired_token_is_refused_by_the_dispatcher() -> None:
    clock = Clock()
    sealer = TokenSealer(KEY, ttl=5.0, clock=clock).for_principal("alice")
    server, call = _started_count()
    call.step(TICK, None)
    token = call.seal(sealer)
    clock.now += 7
    error = _refusal(server.dispatcher.resume(token, sealer))
    assert error.error_type == "StreamTokenError"
    assert "expired 2.0 s ago" in error.error_message


def test_a_producer_stream_over_the_turn_driver() -> None:
    driver = TurnDriver(
        lambda: RpcServer(StreamService, StreamServiceImpl()).dispatcher, TokenSealer(KEY).for_principal(None)
    )
    with RpcConnection(StreamService, driver) as proxy:
        assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=4)] == [0, 1, 2, 3]
        with proxy.running_sum() as ex:
            assert ex.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]})).batch.column(0)[0].as_py() == 3.0
            assert ex.exchange(AnnotatedBatch.from_pydict({"value": [4.0]})).batch.column(0)[0].as_py() == 7.0
    assert len(driver.tokens) >= 4
    assert all(base64.b64decode(t)[:1] == b"\x11" for t in driver.tokens)  # TokenSealer's version byte


def test_key_rotation_previous_keys_still_unseal() -> None:
    from vgi_rpc.http.token import TokenSealer as _Sealer

    old, new = b"o" * 32, b"n" * 32
    token = _Sealer(old).for_principal("alice").seal(b"state")
    rotated = _Sealer(new, previous_keys=[old]).for_principal("alice")
    assert rotated.unseal(token) == b"state"
    with pytest.raises(ValueError, match="failed authentication"):
        _Sealer(old).for_principal("alice").unseal(rotated.seal(b"x"))  # the new key seals
    with pytest.raises(ValueError, match="failed authentication"):
        _Sealer(new).for_principal("alice").unseal(token)  # the old key is no longer listed
    with pytest.raises(ValueError, match="failed authentication"):
        _Sealer(new, previous_keys=[old]).for_principal("bob").unseal(token)
