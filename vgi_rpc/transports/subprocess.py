"""Subprocess transport: a worker process speaking the pipe protocol on its stdin/stdout."""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .._core.ipc import IpcValidation
from ..client import ProtocolClass, RpcConnection
from ..errors import ArgumentError, IPCError, MalformedStreamError, TransportError
from ..log import Message
from .pipe import SPIN_SECONDS, PipeTransport, _grow_pipe

if TYPE_CHECKING:
    import subprocess

    from ..external.config import ExternalLocationConfig

__all__ = ["StderrMode", "SubprocessTransport", "connect"]

P = TypeVar("P")
_log = logging.getLogger("vgi_rpc.wire.transport")


_STDERR_TAIL_LINES = 20  # kept from a piped stderr, for the message of a failed call
_EXIT_WAIT = 1.0  # seconds to wait for a failing worker's exit status and last stderr lines


class StderrMode(enum.Enum):
    """What happens to a worker's stderr."""

    INHERIT = "inherit"  # the worker writes to our stderr
    PIPE = "pipe"  # lines are forwarded to a logger
    DEVNULL = "devnull"  # discarded


class SubprocessTransport(PipeTransport):
    """A PipeTransport over a child process's stdin/stdout; closing it ends the process."""

    def __init__(
        self,
        cmd: list[str],
        *,
        stderr: StderrMode = StderrMode.INHERIT,
        stderr_logger: logging.Logger | None = None,
        close_timeout: float = 5.0,
    ) -> None:
        import subprocess  # here: a worker that never starts one does not import it

        target: Any = {
            StderrMode.INHERIT: None,
            StderrMode.PIPE: subprocess.PIPE,
            StderrMode.DEVNULL: subprocess.DEVNULL,
        }[stderr]
        _check_command(cmd)
        try:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=target, bufsize=0
            )
        except OSError as exc:
            raise TransportError(f"cannot start the worker {cmd!r}: {exc}") from exc
        assert self.process.stdin is not None and self.process.stdout is not None
        _grow_pipe(self.process.stdin.fileno())
        _grow_pipe(self.process.stdout.fileno())
        self.close_timeout = close_timeout
        self._stderr_thread: threading.Thread | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        if stderr is StderrMode.PIPE and self.process.stderr is not None:
            logger = stderr_logger or logging.getLogger("vgi_rpc.worker.stderr")
            self._stderr_thread = threading.Thread(
                target=_forward_lines,
                args=(self.process.stderr, logger, self.stderr_tail),
                name="vgi_rpc-stderr",
                daemon=True,
            )
            self._stderr_thread.start()
        _log.debug("spawned worker pid=%d cmd=%r", self.process.pid, cmd)
        reader = open(self.process.stdout.fileno(), "rb", buffering=1 << 16, closefd=False)  # noqa: SIM115
        super().__init__(reader, self.process.stdin, spin=SPIN_SECONDS)  # the worker is another process

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def abort(self) -> None:
        """Break the connection from outside a blocked call: kill the worker."""
        with contextlib.suppress(OSError):
            self.process.kill()

    def failure_detail(self, exc: BaseException) -> str:
        """What the worker's end says about a failed call: exit status, stderr tail, stray stdout."""
        import subprocess  # here: a worker that never starts one does not import it

        parts = []
        if isinstance(exc, IPCError) and not isinstance(exc, MalformedStreamError):
            parts.append(
                "the worker wrote bytes that are not Arrow IPC to its stdout (a print() before run_server? "
                "a worker must leave stdout to the protocol and write anything else to stderr)"
            )
        try:
            code = wait_exit(self.process, _EXIT_WAIT)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            parts.append(
                f"the worker (pid {self.process.pid}) "
                + (f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
            )
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=_EXIT_WAIT)  # its last lines
            if self.stderr_tail:
                parts.append("its stderr ended with:\n  " + "\n  ".join(self.stderr_tail))
        return "; ".join(parts)

    def close(self) -> None:
        """Close stdin (the worker's cue to exit), then wait; terminate, then kill, if it lingers."""
        import subprocess  # here: a worker that never starts one does not import it

        super().close()
        proc = self.process
        with contextlib.suppress(OSError, ValueError):
            if proc.stdout is not None:
                proc.stdout.close()
        try:
            wait_exit(proc, self.close_timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                wait_exit(proc, 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        _log.debug("worker pid=%d exited with %s", proc.pid, proc.returncode)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """``proc.wait(timeout)``, woken by the exit itself where Linux gives a process file descriptor.

    ``Popen.wait`` with a timeout polls, sleeping 0.5 ms, then 1, 2, 4 ... up to 50 ms between
    looks: a worker that exits 6 ms after its stdin closes is seen 15.5 ms after, one that takes
    16 ms is seen after 31.5. A pidfd becomes readable the moment the process ends.
    """
    import select
    import subprocess  # here: a worker that never starts one does not import it

    if proc.returncode is None and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(proc.pid)
        except OSError:  # an old kernel, or the pid is already gone: Popen.wait knows what to do
            return proc.wait(timeout=timeout)
        try:
            exited = select.poll()
            exited.register(fd, select.POLLIN)
            if not exited.poll(max(0, int(timeout * 1000))):
                raise subprocess.TimeoutExpired(proc.args, timeout)
        finally:
            os.close(fd)
    return proc.wait(timeout=timeout)  # at once, when the pidfd said the process ended


def _check_command(cmd: object) -> None:
    """A worker command is a non-empty list of strings: the program, then its arguments."""
    if isinstance(cmd, str | bytes):
        raise ArgumentError(
            f"the worker command must be a list (the program, then its arguments), not the string {cmd!r}; "
            "for example [sys.executable, 'worker.py'], or shlex.split(...) of a command line"
        )
    if not isinstance(cmd, list | tuple) or not cmd:
        raise ArgumentError(
            f"the worker command must be a non-empty list (the program, then its arguments), got {cmd!r}",
            error_type="ValueError",
        )


def _forward_lines(stream: IO[bytes], logger: logging.Logger, tail: collections.deque[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in iter(stream.readline, b""):
            text = line.decode("utf-8", "replace").rstrip()
            tail.append(text)
            logger.info("%s", text)


@contextlib.contextmanager
def connect(
    protocol: ProtocolClass[P],
    cmd: list[str],
    *,
    on_log: Callable[[Message], None] | None = None,
    external_location: ExternalLocationConfig | None = None,
    stderr: StderrMode = StderrMode.INHERIT,
    stderr_logger: logging.Logger | None = None,
    ipc_validation: IpcValidation = IpcValidation.FULL,
    timeout: float | None = None,
) -> Iterator[P]:
    """Start ``cmd`` as a worker and yield a typed proxy; the worker exits when the block ends.

    *timeout* (seconds, per call or stream turn; None: wait forever): a call that overruns it
    raises ``RpcTimeoutError``, the worker is killed and the connection is closed.
    """
    transport = SubprocessTransport(cmd, stderr=stderr, stderr_logger=stderr_logger)
    try:
        with RpcConnection(
            protocol,
            transport,
            on_log=on_log,
            external_location=external_location,
            ipc_validation=ipc_validation,
            timeout=timeout,
        ) as proxy:
            yield proxy
    finally:
        transport.close()
