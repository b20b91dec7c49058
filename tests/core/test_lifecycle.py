"""The call lifecycle through the server core and the client state machine, with no pipe, thread or process.

Requests and replies are framed IPC bytes (``_core/framing``) handed between ``RpcConnection``
(the client state machine) and the server core's turn functions by the in-memory
``TurnDriver``; below that, ``StreamCall`` and ``ClientStream`` are driven batch by batch.
A stream sealed after any turn and resumed in a fresh ``Dispatcher`` finishes as an unsealed
run does; tokens that were altered, truncated, signed with another key or made for another
method are refused with a typed error.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.services import CountHeader, Everything, EverythingImpl, StreamService, StreamServiceImpl
from tests.transports.turn_driver import TurnDriver, frames
from vgi_rpc import AnnotatedBatch, Level, Message, ProtocolError, RpcConnection, RpcError, RpcServer
from vgi_rpc._core import keys
from vgi_rpc._core.calls import HmacSealer, StreamCall
from vgi_rpc._core.dispatch import Dispatcher, Reply
from vgi_rpc._core.framing import decode_messages
from vgi_rpc._core.invoke import ClientStream, RequestEncoder
from vgi_rpc._core.ipc import TICK, IpcValidation
from vgi_rpc._core.messages import parse_error
from vgi_rpc._core.service import service_spec

SEALER = HmacSealer(b"0123456789abcdef0123456789abcdef")
IMPL = StreamServiceImpl()


def fresh() -> Dispatcher:
    """A Dispatcher as another process would build it: same Protocol and implementation."""
    return RpcServer(StreamService, IMPL).dispatcher


def start(method: str, **kwargs: Any) -> StreamCall:
    spec = service_spec(StreamService)
    request = RequestEncoder(spec, spec.methods[method]).encode((), kwargs)
    call = fresh().handle_messages(frames(request)[0])
    assert isinstance(call, StreamCall)
    return call


# -- through RpcConnection, framed bytes in and out -------------------------------------------


def test_unary_stream_header_logs_errors_and_cancel_over_framed_turns() -> None:
    logs: list[Message] = []
    driver = TurnDriver(fresh, SEALER)
    with RpcConnection(StreamService, driver, on_log=logs.append) as proxy:
        assert proxy.ping() == "pong"
        assert [b.batch.column("i")[0].as_py() for b in proxy.count(n=3, chatty=True)] == [0, 1, 2]
        assert [m.message for m in logs] == ["batch 0", "batch 1", "batch 2"]
        with proxy.count_with_header(n=2) as session:
            assert session.header == CountHeader(2, "2 items")
            assert [b.batch.column("i")[0].as_py() for b in session] == [0, 1]
        assert logs[-1] == Message(Level.INFO, "starting")
        with pytest.raises(RpcError, match="failed at 1") as info:
            list(proxy.count(n=3, fail_at=1))
        assert info.value.error_type == "RuntimeError"
        with proxy.running_sum() as ex:
            assert ex.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]})).batch.column(0)[0].as_py() == 3.0
            assert ex.exchange(AnnotatedBatch.from_pydict({"value": [4.0]})).batch.column(0)[0].as_py() == 7.0
            ex.cancel()
            with pytest.raises(ProtocolError, match="closed or cancelled"):
                ex.exchange(AnnotatedBatch.from_pydict({"value": [1.0]}))
        assert proxy.ping() == "pong"
    # every stream turn after the first carried a sealed token and went to a new Dispatcher
    assert len(driver.tokens) >= 5
    assert driver.requests > len(driver.tokens)


def test_unary_every_path_over_framed_turns() -> None:
    driver = TurnDriver(lambda: RpcServer(Everything, EverythingImpl()).dispatcher, SEALER)
    with RpcConnection(Everything, driver) as proxy:
        assert proxy.echo_int(value=7) == 7  # template path
        assert proxy.echo_str(value="x") == "x"  # general path
        with pytest.raises(RpcError, match="something went wrong"):
            proxy.fail(message="something went wrong")


# -- StreamCall and Dispatcher.resume ---------------------------------------------------------


def _data(items: list[tuple[pa.RecordBatch, dict[bytes, bytes] | None]]) -> list[pa.RecordBatch]:
    return [b for b, md in items if not md or keys.LOG_LEVEL not in md]


def _run(call: StreamCall, inputs: list[pa.RecordBatch], seal_after: int | None) -> list[pa.RecordBatch]:
    out: list[pa.RecordBatch] = []
    for k, batch in enumerate(inputs):
        if seal_after is not None and k == seal_after:
            resumed = fresh().resume(call.seal(SEALER), SEALER, protocol="StreamService", method=call.method)
            assert isinstance(resumed, StreamCall)
            call = resumed
        turn = call.step(batch, None)
        out.extend(_data(turn.items))
        if turn.done:
            break
    return out


@pytest.mark.parametrize("k", range(6))
def test_producer_sealed_after_turn_k_finishes_like_an_unsealed_run(k: int) -> None:
    ticks = [TICK] * 8
    plain = _run(start("count", n=5, chatty=True), ticks, None)
    sealed = _run(start("count", n=5, chatty=True), ticks, k)
    assert [b.to_pydict() for b in sealed] == [b.to_pydict() for b in plain] == [{"i": [i]} for i in range(5)]


@pytest.mark.parametrize("k", range(4))
def test_exchange_sealed_after_turn_k_finishes_like_an_unsealed_run(k: int) -> None:
    schema = pa.schema([pa.field("value", pa.float64())])
    inputs = [pa.RecordBatch.from_pydict({"value": [float(i), 0.5]}, schema=schema) for i in range(4)]
    plain = _run(start("running_sum"), inputs, None)
    sealed = _run(start("running_sum"), inputs, k)
    assert [b.to_pydict() for b in sealed] == [b.to_pydict() for b in plain]
    assert plain[-1].to_pydict() == {"total": [8.0]}


def _refusal(reply: StreamCall | Reply) -> RpcError:
    assert isinstance(reply, Reply)
    (batch, md), *_ = reply.items
    assert batch.num_rows == 0 and md is not None
    return parse_error(md)


def _token() -> bytes:
    call = start("count", n=3)
    call.step(TICK, None)
    return call.seal(SEALER)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1],  # truncated
        lambda t: t[:40],  # truncated into the signature
        lambda t: t[:-1] + bytes([t[-1] ^ 1]),  # altered payload
        lambda t: t[:5] + bytes([t[5] ^ 1]) + t[6:],  # altered signature
        lambda t: b"",
        lambda t: b"\x01" + b"\x00" * 64,
        lambda t: HmacSealer(b"another-key-0123456789abcdef").seal(SEALER.unseal(t)),  # another key
    ],
    ids=["truncated", "truncated-sig", "altered", "altered-sig", "empty", "zeros", "other-key"],
)
def test_bad_tokens_are_refused_with_a_typed_error(mutate: Any) -> None:
    error = _refusal(fresh().resume(mutate(_token()), SEALER))
    assert error.error_type == "StreamTokenError"
    assert error.error_kind == "invalid_stream_token"
    assert error.remote_traceback == ""


def test_a_token_for_another_method_is_refused() -> None:
    token = _token()
    error = _refusal(fresh().resume(token, SEALER, protocol="StreamService", method="running_sum"))
    assert error.error_type == "StreamTokenError"
    assert "count" in error.error_message
    # a token signed right but naming a method this server does not host
    other = RpcServer(Everything, EverythingImpl()).dispatcher
    assert _refusal(other.resume(token, SEALER)).error_type == "StreamTokenError"


def test_a_token_turn_without_a_token_is_refused() -> None:
    from vgi_rpc._core.ipc import encode_stream
    from vgi_rpc._core.turns import exchange_turn

    body = exchange_turn(fresh(), frames(bytes(encode_stream(pa.schema([]), [(TICK, None)]).to_pybytes()))[0], SEALER)
    assert body.refusal == "bad_request"
    (reply,) = frames(b"".join(bytes(memoryview(c)) for c in body.body))
    _, items = decode_messages(reply)
    assert parse_error(items[0][1] or {}).error_type == "StreamTokenError"


# -- ClientStream alone -----------------------------------------------------------------------


def _client(method: str) -> ClientStream:
    spec = service_spec(StreamService)
    return ClientStream(spec.methods[method], ipc_validation=IpcValidation.FULL, on_log=None)


def test_client_state_machine_sorts_a_turn() -> None:
    state = _client("count")
    log = (
        pa.RecordBatch.from_pydict({"i": pa.array([], pa.int64())}),
        {
            keys.LOG_LEVEL: b"INFO",
            keys.LOG_MESSAGE: b"hello",
        },
    )
    data = (pa.RecordBatch.from_pydict({"i": [1]}), {b"user": b"x"})
    out = state.take_turn([log, data], False)
    assert out is not None and out.batch.column(0)[0].as_py() == 1
    assert out.custom_metadata == pa.KeyValueMetadata({b"user": b"x"})
    assert state.take_turn([], True) is None
    assert state.ended
    with pytest.raises(ProtocolError):
        state.tick(None)


def test_client_state_machine_echoes_tokens_on_turn_per_request() -> None:
    spec = service_spec(StreamService)
    state = ClientStream(
        spec.methods["running_sum"], ipc_validation=IpcValidation.FULL, on_log=None, turn_per_request=True
    )
    empty = pa.RecordBatch.from_pydict({"total": pa.array([], pa.float64())})
    state.take_init([(empty, {keys.STREAM_STATE: b"AAA=", keys.CALL_STATE: b"CCC="})])
    _, md = state.exchange(pa.RecordBatch.from_pydict({"value": [1.0]}))
    assert md == {keys.STREAM_STATE: b"AAA=", keys.CALL_STATE: b"CCC="}
    out = state.take_turn([(pa.RecordBatch.from_pydict({"total": [1.0]}), {keys.STREAM_STATE: b"BBB="})], True)
    assert out is not None and out.custom_metadata is None  # tokens are not user metadata
    assert state.exchange(pa.RecordBatch.from_pydict({"value": [1.0]}))[1] == {
        keys.STREAM_STATE: b"BBB=",
        keys.CALL_STATE: b"CCC=",
    }
    # a turn that brings no new token ends the stream
    assert state.take_turn([], True) is None and state.ended
