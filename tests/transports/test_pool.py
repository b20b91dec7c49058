"""WorkerPool: reuse, eviction, the max_idle cap, dead and abandoned workers, close()."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import StreamService
from tests.transports.factories import WORKER
from vgi_rpc import TransportError, WorkerPool

CMD = [sys.executable, WORKER, "--streams"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path_stat(pid) != "Z"
    except FileNotFoundError:
        return False


def Path_stat(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _ended(pid: int, within: float = 5.0) -> bool:
    """Whether process *pid* ends within a few seconds (a worker being closed may take a moment)."""
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _pid(proxy: Any) -> int:
    return int(proxy._connection.transport.pid)


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    p = WorkerPool(max_idle=2, idle_timeout=30.0)
    yield p
    p.close()


def test_sequential_borrows_reuse_one_worker(pool: WorkerPool) -> None:
    pids = []
    for _ in range(5):
        with pool.connect(StreamService, CMD) as proxy:
            assert proxy.ping() == "pong"
            assert [b.batch.column(0)[0].as_py() for b in proxy.count(n=2)] == [0, 1]
            pids.append(_pid(proxy))
            assert pool.active_count == 1
    assert len(set(pids)) == 1
    m = pool.metrics
    assert (m.borrows, m.spawns, m.reuses, m.returns, m.idle, m.active) == (5, 1, 4, 5, 1, 0)


def test_idle_workers_are_evicted_after_idle_timeout() -> None:
    pool = WorkerPool(max_idle=4, idle_timeout=0.3)
    try:
        with pool.connect(StreamService, CMD) as proxy:
            pid = _pid(proxy)
        assert pool.idle_count == 1
        deadline = time.monotonic() + 5
        while pool.idle_count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.idle_count == 0
        assert pool.metrics.evictions_idle == 1 and pool.metrics.evictions == 1
        assert _ended(pid)
    finally:
        pool.close()


def test_max_idle_caps_the_idle_workers(pool: WorkerPool) -> None:
    with (
        pool.connect(StreamService, CMD) as a,
        pool.connect(StreamService, CMD) as b,
        pool.connect(StreamService, CMD) as c,
    ):
        pids = {_pid(a), _pid(b), _pid(c)}
        assert pool.active_count == 3 and pool.metrics.spawns == 3
    assert len(pids) == 3
    m = pool.metrics
    assert (m.idle, m.active, m.evictions_max) == (2, 0, 1)
    time.sleep(0.5)
    assert sum(_alive(pid) for pid in pids) == 2


def test_a_killed_idle_worker_is_replaced(pool: WorkerPool) -> None:
    with pool.connect(StreamService, CMD) as proxy:
        pid = _pid(proxy)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with pool.connect(StreamService, CMD) as proxy:
        assert proxy.ping() == "pong"
        assert _pid(proxy) != pid
    m = pool.metrics
    assert (m.spawns, m.discards, m.reuses) == (2, 1, 0)


def test_a_worker_whose_stream_was_abandoned_is_discarded(pool: WorkerPool) -> None:
    with pool.connect(StreamService, CMD) as proxy:
        session = proxy.count(n=-1)
        session.tick()
        pid = _pid(proxy)
    assert pool.idle_count == 0 and pool.metrics.discards == 1
    assert _ended(pid)
    with pytest.raises(TransportError):  # the abandoned session's connection is closed
        session.tick()
    with pool.connect(StreamService, CMD) as proxy:
        assert _pid(proxy) != pid and proxy.ping() == "pong"


def test_a_worker_that_failed_is_discarded(pool: WorkerPool) -> None:
    with pool.connect(StreamService, CMD) as proxy:
        pid = _pid(proxy)
        with pytest.raises(TransportError):
            proxy.crash(code=3)
    assert pool.idle_count == 0 and pool.metrics.discards == 1
    assert _ended(pid)


def test_close_ends_every_idle_worker_and_refuses_new_borrows() -> None:
    pool = WorkerPool(max_idle=4)
    with pool.connect(StreamService, CMD) as a, pool.connect(StreamService, CMD) as b:
        pids = [_pid(a), _pid(b)]
    assert pool.idle_count == 2
    pool.close()
    assert all(_ended(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="closed"), pool.connect(StreamService, CMD):
        pass


def test_a_borrowed_worker_ends_when_it_comes_back_to_a_closed_pool() -> None:
    pool = WorkerPool()
    with pool.connect(StreamService, CMD) as proxy:
        pid = _pid(proxy)
        pool.close()
        assert proxy.ping() == "pong"  # still usable while borrowed
    assert _ended(pid)


def test_each_borrow_gets_its_own_segment_and_big_batches_cross_it() -> None:
    import os as _os

    from benchmarks.service import Bench

    bench = [sys.executable, str(Path(WORKER).parents[2] / "benchmarks" / "service.py")]
    pool = WorkerPool(max_idle=2, shm_size=32 << 20)
    names = []
    try:
        for _ in range(3):
            with pool.connect(Bench, bench) as proxy:
                transport = proxy._connection.transport  # type: ignore[attr-defined]
                rows = sum(b.batch.num_rows for b in proxy.bulk(batches=3, rows=262_144))
                assert rows == 3 * 262_144
                assert transport.offload.resolved == 3  # the 4 MiB batches came through the segment
                names.append(transport.shm.name)
                assert _os.path.exists(f"/dev/shm/{transport.shm.name}")
            assert not _os.path.exists(f"/dev/shm/{names[-1]}")  # unlinked when the borrow ended
        assert len(set(names)) == 3 and pool.metrics.spawns == 1  # one worker, a new segment each time
    finally:
        pool.close()
