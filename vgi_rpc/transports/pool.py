"""WorkerPool: subprocess workers kept warm between ``connect()`` calls.

A borrow takes an idle worker started with the same command (or spawns one), and gives it back
when the ``with`` block ends, if the connection is still in step: no transport failure, no
stream left open, the process alive. Anything else is discarded (the process ended), never
handed out again. Idle workers beyond ``max_idle`` or older than ``idle_timeout`` seconds are
evicted by a reaper thread; ``close()`` ends every idle worker (borrowed ones end when they come
back). With ``shm_size`` each borrow gets its own shared-memory segment of that many bytes
(results and stream batches of 128 KiB or more cross it), unlinked when the borrow ends.
Only the ``vgi_rpc.pool`` logger speaks.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .._core.ipc import IpcValidation
from ..client import ProtocolClass, RpcConnection
from ..log import Message
from .shm import ShmPipeTransport, ShmSegment
from .subprocess import StderrMode, SubprocessTransport

if TYPE_CHECKING:
    from ..external.config import ExternalLocationConfig

__all__ = ["PoolMetrics", "WorkerPool"]

P = TypeVar("P")
_log = logging.getLogger("vgi_rpc.pool")


@dataclass
class PoolMetrics:
    """Counters of a pool's life (``idle`` and ``active`` are current values)."""

    borrows: int = 0
    spawns: int = 0
    reuses: int = 0
    returns: int = 0
    discards: int = 0
    evictions: int = 0
    evictions_idle: int = 0  # idle longer than idle_timeout
    evictions_max: int = 0  # more idle workers than max_idle
    idle: int = 0
    active: int = 0


@dataclass
class _Idle:
    key: tuple[str, ...]
    transport: SubprocessTransport
    since: float


class WorkerPool:
    """A pool of worker processes reused across ``connect()`` calls."""

    def __init__(
        self,
        max_idle: int = 4,
        idle_timeout: float = 60.0,
        stderr: StderrMode = StderrMode.INHERIT,
        stderr_logger: logging.Logger | None = None,
        shm_size: int | None = None,
    ) -> None:
        if max_idle < 0 or idle_timeout <= 0:
            raise ValueError("max_idle must be >= 0 and idle_timeout > 0")
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.stderr = stderr
        self.stderr_logger = stderr_logger
        self.shm_size = shm_size
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []
        self._active = 0
        self._metrics = PoolMetrics()
        self._closed = False
        self._wake = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="vgi_rpc-pool-reaper", daemon=True)
        self._reaper.start()

    # -- public ---------------------------------------------------------------------------------

    @property
    def metrics(self) -> PoolMetrics:
        """A snapshot of the counters."""
        with self._lock:
            return PoolMetrics(**{**self._metrics.__dict__, "idle": len(self._idle), "active": self._active})

    @property
    def idle_count(self) -> int:
        """Workers waiting to be borrowed."""
        with self._lock:
            return len(self._idle)

    @property
    def active_count(self) -> int:
        """Workers lent out now."""
        with self._lock:
            return self._active

    @contextlib.contextmanager
    def connect(
        self,
        protocol: ProtocolClass[P],
        cmd: list[str],
        *,
        on_log: Callable[[Message], None] | None = None,
        external_location: ExternalLocationConfig | None = None,
        ipc_validation: IpcValidation = IpcValidation.FULL,
        timeout: float | None = None,
    ) -> Iterator[P]:
        """Borrow a worker running *cmd* and yield a typed proxy; the worker goes back when the block ends."""
        transport = self._borrow(list(cmd))
        connection: RpcConnection[P] | None = None
        segment = None
        try:
            wire: SubprocessTransport | ShmPipeTransport = transport
            if self.shm_size is not None:  # each borrow gets its own segment, gone when it ends
                segment = ShmSegment.create(self.shm_size)
                wire = ShmPipeTransport(transport, segment)
            connection = RpcConnection(
                protocol,
                wire,
                on_log=on_log,
                external_location=external_location,
                ipc_validation=ipc_validation,
                timeout=timeout,
            )
            yield connection.proxy
        finally:
            self._give_back(transport, connection)
            if segment is not None:
                segment.close()
                segment.unlink()

    def close(self) -> None:
        """End every idle worker and the reaper; workers still lent out end when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        self._wake.set()
        for entry in idle:
            entry.transport.close()
        self._reaper.join(timeout=5)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- borrowing ------------------------------------------------------------------------------

    def _borrow(self, cmd: list[str]) -> SubprocessTransport:
        key = tuple(cmd)
        dead: list[SubprocessTransport] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the WorkerPool is closed")
            self._metrics.borrows += 1
            found = None
            for entry in reversed(self._idle):  # the most recently returned first: warmest
                if entry.key != key:
                    continue
                self._idle.remove(entry)
                if entry.transport.process.poll() is None:
                    found = entry.transport
                    break
                dead.append(entry.transport)  # died while idle: replaced below
                self._metrics.discards += 1
            self._active += 1
            if found is not None:
                self._metrics.reuses += 1
        for transport in dead:
            transport.close()
        if found is not None:
            _log.debug("reusing worker pid=%d", found.pid)
            return found
        try:
            transport = SubprocessTransport(cmd, stderr=self.stderr, stderr_logger=self.stderr_logger)
        except BaseException:
            with self._lock:
                self._active -= 1
            raise
        with self._lock:
            self._metrics.spawns += 1
        _log.debug("spawned worker pid=%d", transport.pid)
        return transport

    def _give_back(self, transport: SubprocessTransport, connection: RpcConnection[Any] | None) -> None:
        reusable = connection is not None and connection.reusable and transport.process.poll() is None
        if connection is not None:
            connection.detach()
        evicted: list[SubprocessTransport] = []
        with self._lock:
            self._active -= 1
            if reusable and not self._closed:
                self._metrics.returns += 1
                self._idle.append(_Idle(tuple(transport.process.args), transport, time.monotonic()))  # type: ignore[arg-type]
                while len(self._idle) > self.max_idle:
                    evicted.append(self._idle.pop(0).transport)
                    self._metrics.evictions += 1
                    self._metrics.evictions_max += 1
            else:
                if not reusable:
                    self._metrics.discards += 1
                evicted.append(transport)
        for worker in evicted:
            _log.debug("ending worker pid=%d", worker.pid)
            worker.close()

    def _reap(self) -> None:
        period = min(1.0, self.idle_timeout / 2)
        while not self._wake.wait(period):
            now = time.monotonic()
            with self._lock:
                expired = [e for e in self._idle if now - e.since >= self.idle_timeout]
                for entry in expired:
                    self._idle.remove(entry)
                    self._metrics.evictions += 1
                    self._metrics.evictions_idle += 1
            for entry in expired:
                _log.debug("evicting idle worker pid=%d", entry.transport.pid)
                entry.transport.close()
