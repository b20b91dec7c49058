"""Big bytes values read straight into their own ``bytes`` objects and handed over as is (``_core/wholes.py``)."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.services import Everything
from vgi_rpc import RpcConnection, SubprocessTransport
from vgi_rpc._core.framing import FrameReader, decode_messages
from vgi_rpc._core.ipc import encode_stream
from vgi_rpc._core.wholes import WHOLE_MIN, Hollow, first_value, plan_for
from vgi_rpc.errors import IPCError, MalformedStreamError, TransportError

WORKER = str(Path(__file__).parent.parent / "workers" / "everything_worker.py")
BIG = bytes(range(256)) * (WHOLE_MIN // 256 * 2) + b"odd"  # 2 MiB and 3 bytes: not a multiple of 8

MIXED = pa.schema(
    [
        ("n", pa.int64()),
        ("l", pa.list_(pa.string())),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("p", pa.struct([("x", pa.float64())])),
        ("c", pa.large_binary()),
        ("t", pa.binary()),
    ]
)


def _mixed(big: bytes, rows: int = 1) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array([7] * rows),
            pa.array([["a", "bb"]] * rows),
            pa.array(["hé"] * rows),
            pa.array([big] * rows),
            pa.array([{"x": 1.5}] * rows),
            pa.array([big[: WHOLE_MIN + 5]] * rows, pa.large_binary()),
            pa.array([b"tail"] * rows),
        ],
        schema=MIXED,
    )


def _read(data: bytes, wholes: bool = True) -> list[tuple[bytes | bytearray | memoryview, bool]] | None:
    source = io.BufferedReader(io.BytesIO(data), 1 << 16)
    return FrameReader(source.read, source.readinto, source.peek).read_messages(wholes)


def _stream(batch: pa.RecordBatch) -> bytes:
    return encode_stream(batch.schema, [(batch, {b"k": b"v"})]).to_pybytes()


def test_big_binary_values_arrive_in_their_own_bytes_objects() -> None:
    batch = _mixed(BIG)
    messages = _read(_stream(batch))
    assert messages is not None
    message = messages[1][0]
    assert type(message) is Hollow and sorted(message.values) == [3, 5]
    assert len(message) < 1024  # the hollow message: everything but the two values
    _, items = decode_messages(messages)
    got, md = items[0]
    got.validate(full=True)
    assert got.equals(batch) and md == {b"k": b"v"}
    # the value handed over is the object read, not a copy of it
    assert first_value(got.column(3)) is message.values[3]
    assert first_value(got.column(5)) is message.values[5]
    assert type(first_value(got.column(5))) is bytes
    assert first_value(got.column(6)) == b"tail"


def test_other_streams_are_read_whole() -> None:
    small = _read(_stream(_mixed(b"x" * (WHOLE_MIN // 2))))
    many_rows = _read(_stream(_mixed(BIG, rows=2)))
    not_asked = _read(_stream(_mixed(BIG)), wholes=False)
    dictionary = pa.RecordBatch.from_arrays([pa.array(["a"]).dictionary_encode(), pa.array([BIG])], names=["d", "b"])
    with_dictionary = _read(_stream(dictionary))
    for messages in (small, many_rows, not_asked, with_dictionary):
        assert messages is not None
        assert not any(type(m) is Hollow for m, _ in messages)
    # data buffers: int64 2, list<utf8> 2+3, utf8 3, then b; struct<f64> 1+2 before c
    assert plan_for(MIXED) == ((3, 2 + 5 + 3 + 2), (5, 12 + 1 + 3 + 2), (6, 18 + 3))


def test_older_metadata_versions_are_read_whole() -> None:
    # before V5 some types had other buffers (a union's validity): the plan counts V5's
    batch = _mixed(BIG)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(metadata_version=pa.ipc.MetadataVersion.V4)
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(batch)
    messages = _read(sink.getvalue().to_pybytes())
    assert messages is not None and not any(type(m) is Hollow for m, _ in messages)
    assert decode_messages(messages)[1][0][0].equals(batch)


def test_a_value_not_read_hollow_is_copied_out_as_before() -> None:
    column = pa.array([BIG])
    assert first_value(column) == BIG
    assert first_value(pa.array([None], pa.binary())) is None


def _buffer_table(message: bytes) -> tuple[int, int]:
    """(position of the first Buffer struct, their number) in a record-batch message."""
    from vgi_rpc._core.wholes import _batch_fields

    found = _batch_fields(message, 8)
    assert found is not None
    return found[1], found[2]


def _batch_message(data: bytes) -> tuple[int, int]:
    """(start, end) of the record-batch message in a one-batch stream."""
    start = 8 + struct.unpack_from("<i", data, 4)[0]
    return start, len(data) - 8


def test_overlapping_buffers_are_read_whole_and_refused_as_before() -> None:
    data = bytearray(_stream(pa.RecordBatch.from_arrays([pa.array([BIG]), pa.array([BIG])], names=["a", "b"])))
    start, _ = _batch_message(bytes(data))
    first, count = _buffer_table(bytes(data[start:]))
    assert count == 6
    # point the second value's data buffer into the first one's
    a_data = struct.unpack_from("<q", data, start + first + 16 * 2)[0]
    struct.pack_into("<q", data, start + first + 16 * 5, a_data + 8)
    messages = _read(bytes(data))
    assert messages is not None and not any(type(m) is Hollow for m, _ in messages)


def test_offsets_past_the_value_are_malformed_not_a_crash() -> None:
    data = bytearray(_stream(pa.RecordBatch.from_arrays([pa.array([BIG])], names=["b"])))
    start, _ = _batch_message(bytes(data))
    first, _ = _buffer_table(bytes(data[start:]))
    offsets_at = struct.unpack_from("<q", data, start + first + 16)[0]
    meta_end = start + 8 + struct.unpack_from("<i", data, start + 4)[0]
    struct.pack_into("<ii", data, meta_end + offsets_at, 0, len(BIG) + 64)
    messages = _read(bytes(data))
    assert messages is not None and type(messages[1][0]) is Hollow
    with pytest.raises(MalformedStreamError):
        decode_messages(messages)


def test_a_stream_cut_short_fails_alike_read_hollow_or_whole() -> None:
    data = _stream(_mixed(BIG))
    for cut in range(1, len(data), len(data) // 97):

        def outcome(wholes: bool, cut: int = cut) -> str:
            try:
                _read(data[:cut], wholes)
            except (IPCError, TransportError) as exc:
                return type(exc).__name__
            return "read"

        assert outcome(True) == outcome(False) != "read", cut


def _peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc")
def test_an_echo_holds_one_copy_of_the_payload_per_side() -> None:
    payload = b"\x5a" * (64 << 20)
    transport = SubprocessTransport([sys.executable, WORKER])
    try:
        with RpcConnection(Everything, transport) as proxy:
            assert proxy.echo_bytes(b"x" * (2 * WHOLE_MIN)) == b"x" * (2 * WHOLE_MIN)  # warm both sides
            me, worker = Path("/proc/self").resolve().name, transport.pid
            _reset_peak(int(me))
            _reset_peak(worker)
            base = (_peak_kib(int(me)), _peak_kib(worker))
            got = proxy.echo_bytes(payload)
            grown = (_peak_kib(int(me)) - base[0], _peak_kib(worker) - base[1])
            assert got == payload
            del got
    finally:
        transport.close()
    # one copy is 64 MiB; two (a receive buffer and the value copied out of it) would be 128
    limit = 96 << 10
    assert grown[0] < limit and grown[1] < limit, grown
