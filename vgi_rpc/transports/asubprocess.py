"""``aconnect``: a worker process over asyncio pipes, driven by ``apipe.AsyncLongStreamDriver``.

As the sync ``connect``: the worker's stdin and stdout carry the protocol, its stderr is inherited,
dropped or forwarded to a logger (the last lines kept to explain a failure), and leaving the block
closes stdin and waits for the worker (terminate, then kill, if it lingers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, overload

from ..aclient import AsyncRpcConnection
from ..client import ProtocolClass
from ..errors import TransportError
from ..log import Message
from .apipe import LIMIT, AsyncLongStreamDriver
from .subprocess import StderrMode, _check_command

__all__ = ["aconnect"]

P = TypeVar("P")
_STDERR_TAIL = 20


async def _forward(stream: asyncio.StreamReader, logger: logging.Logger, tail: deque[str]) -> None:
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        tail.append(text)
        logger.info("%s", text)


class _Worker:
    """A worker process started with asyncio, and what its end says when a call fails."""

    def __init__(self, process: asyncio.subprocess.Process, tail: deque[str]) -> None:
        self.process = process
        self.tail = tail

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            self.process.kill()

    async def detail(self) -> str:
        """The worker's exit status and stderr tail, when it has ended."""
        try:
            async with asyncio.timeout(0.5):
                code = await self.process.wait()
        except TimeoutError:
            return ""
        parts = [
            f"the worker (pid {self.process.pid}) "
            + (f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
        ]
        if self.tail:
            parts.append("its stderr ended with:\n  " + "\n  ".join(self.tail))
        return "; ".join(parts)

    async def stop(self, close_timeout: float) -> None:
        """Wait for the worker to exit after its stdin closed; terminate, then kill, if it lingers."""
        proc = self.process
        try:
            async with asyncio.timeout(close_timeout):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                async with asyncio.timeout(2):
                    await proc.wait()
            except TimeoutError:
                self.kill()
                await proc.wait()


@overload
def aconnect(
    protocol: ProtocolClass[Any],
    cmd: list[str],
    *,
    twin: ProtocolClass[P],
    on_log: Callable[[Message], None] | None = ...,
    stderr: StderrMode = ...,
    stderr_logger: logging.Logger | None = ...,
    ipc_validation: Any = ...,
    timeout: float | None = ...,
) -> contextlib.AbstractAsyncContextManager[P]: ...
@overload
def aconnect(
    protocol: ProtocolClass[Any],
    cmd: list[str],
    *,
    twin: None = ...,
    on_log: Callable[[Message], None] | None = ...,
    stderr: StderrMode = ...,
    stderr_logger: logging.Logger | None = ...,
    ipc_validation: Any = ...,
    timeout: float | None = ...,
) -> contextlib.AbstractAsyncContextManager[Any]: ...
def aconnect(
    protocol: ProtocolClass[Any],
    cmd: list[str],
    *,
    twin: ProtocolClass[Any] | None = None,
    on_log: Callable[[Message], None] | None = None,
    stderr: StderrMode = StderrMode.INHERIT,
    stderr_logger: logging.Logger | None = None,
    ipc_validation: Any = None,
    timeout: float | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Start ``cmd`` as a worker and yield an async proxy; the worker exits when the block ends.

    As :func:`vgi_rpc.connect`, with coroutine methods. *twin*: an async twin of *protocol* (its
    methods ``async def``, stream methods returning ``AsyncStreamSession``), checked against
    *protocol* here and used only to type the proxy. Calls on the connection are serialised;
    a call that fails, times out or is cancelled in the middle kills the worker.
    """
    return _aconnect(protocol, cmd, twin, on_log, stderr, stderr_logger, ipc_validation, timeout)


@contextlib.asynccontextmanager
async def _aconnect(
    protocol: ProtocolClass[Any],
    cmd: list[str],
    twin: ProtocolClass[Any] | None,
    on_log: Callable[[Message], None] | None,
    stderr: StderrMode,
    stderr_logger: logging.Logger | None,
    ipc_validation: Any,
    timeout: float | None,
) -> AsyncIterator[Any]:
    from .._core.ipc import IpcValidation

    _check_command(cmd)
    target: Any = {
        StderrMode.INHERIT: None,
        StderrMode.PIPE: asyncio.subprocess.PIPE,
        StderrMode.DEVNULL: asyncio.subprocess.DEVNULL,
    }[stderr]
    try:
        process = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=target, limit=LIMIT
        )
    except OSError as exc:
        raise TransportError(f"cannot start the worker {cmd!r}: {exc}") from exc
    assert process.stdin is not None and process.stdout is not None
    tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    forwarder = None
    if process.stderr is not None:
        logger = stderr_logger or logging.getLogger("vgi_rpc.worker.stderr")
        forwarder = asyncio.ensure_future(_forward(process.stderr, logger, tail))
    worker = _Worker(process, tail)
    driver = AsyncLongStreamDriver(process.stdout, process.stdin, on_abort=worker.kill)
    driver.failure_detail = worker.detail  # type: ignore[attr-defined]
    connection: AsyncRpcConnection[Any] = AsyncRpcConnection(
        protocol, driver, on_log, ipc_validation=ipc_validation or IpcValidation.FULL, timeout=timeout, twin=twin
    )
    try:
        yield connection.proxy
    finally:
        await connection.aclose()
        await worker.stop(5.0)
        if forwarder is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await forwarder
            forwarder.cancel()
