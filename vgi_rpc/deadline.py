"""Call deadlines: a watchdog that breaks a connection's transport when a call or stream turn overruns.

Only connections made with ``timeout=`` have one (one thread each, started on first use); a
call arms it before its I/O and disarms it after, so the per-call cost is two lock operations.
When a deadline passes, the watchdog aborts the transport (a worker process is killed, an
in-process pipe is closed from the server's side), which ends the blocked read or write; the
call then raises :class:`~vgi_rpc.errors.RpcTimeoutError` and the connection stays broken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog"]


class Watchdog:
    """Aborts a transport when an armed deadline passes."""

    def __init__(self, timeout: float, abort: Callable[[], None]) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = timeout
        self.fired = False
        self._abort = abort
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        """Start the clock for one call or stream turn."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vgi_rpc-deadline", daemon=True)
                self._thread.start()
            self._deadline = time.monotonic() + self.timeout
            self._cond.notify()

    def disarm(self) -> None:
        """The call or turn finished in time."""
        with self._cond:
            self._deadline = None

    def stop(self) -> None:
        """End the watchdog thread (the connection is closing)."""
        with self._cond:
            self._stopped = True
            self._deadline = None
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self.fired = True
                self._deadline = None
                self._stopped = True
                break
        if self.fired:
            self._abort()
