"""Interop with the reference 0.52.2: our async client against its pipe worker and its HTTP server,
and its conformance runner (``--url``) against our ASGI app under uvicorn, with the WSGI app's counts.

(Its sync client against our ASGI app: ``tests/http/test_http_deployment.py``, the uvicorn case.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.aio.factories import run
from tests.http.servers import run_url_runner, stop
from tests.http.test_client_vs_peer import PEER_WORKER, _start, _stop
from tests.http.test_conformance_http import CAP_TESTS, EXTERNAL_CAP_TESTS, PIPE_ONLY, _failures
from tests.services import CountHeader, Everything, StreamService
from tests.transports.factories import uvicorn_server
from vgi_rpc import AnnotatedBatch, Message, RpcError
from vgi_rpc.aio import aconnect, ahttp_connect

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]


async def _stream_checks(proxy: Any, logs: list[Message]) -> None:
    assert [b.batch.column("i")[0].as_py() async for b in proxy.count(n=3, chatty=True)] == [0, 1, 2]
    assert [m.message for m in logs] == ["batch 0", "batch 1", "batch 2"]
    async with proxy.count_with_header(n=2) as session:
        assert session.header == CountHeader(2, "2 items")
        assert len([b async for b in session]) == 2
    async with proxy.running_sum() as session:
        out = await session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0]}))
        assert out.batch.to_pydict() == {"total": [3.0]}
    before = await proxy.cancelled_count()
    async with proxy.count(n=-1) as session:
        await session.tick()
        await session.cancel()
    assert await proxy.cancelled_count() == before + 1
    with pytest.raises(RpcError, match="failed at 1"):
        async for _ in proxy.count(n=3, fail_at=1):
            pass
    assert await proxy.ping() == "pong"


def test_our_async_client_against_the_reference_pipe_worker(peer_python: Path) -> None:
    cmd = [str(peer_python), "-I", PEER_WORKER]

    async def body() -> None:
        os.environ["VGI_TEST_SERVICE"] = "everything"
        logs: list[Message] = []
        async with aconnect(Everything, cmd, on_log=logs.append) as proxy:
            assert await proxy.greet(name="bo", times=2) == "hello bo hello bo"
            assert await proxy.echo_str(value="héllo") == "héllo"
            with pytest.raises(RpcError) as info:
                await proxy.fail(message="boom")
            assert info.value.error_type == "ValueError"
            assert await proxy.chatty(value="x") == "X"
            assert [m.message for m in logs] == ["first", "second", "third"]
        os.environ["VGI_TEST_SERVICE"] = "streams"
        logs.clear()
        async with aconnect(StreamService, cmd, on_log=logs.append) as proxy:
            await _stream_checks(proxy, logs)

    try:
        run(body, limit=120)
    finally:
        os.environ.pop("VGI_TEST_SERVICE", None)


def test_our_async_client_against_the_reference_http_server(peer_python: Path, tmp_path: Path) -> None:
    env = {**os.environ, "VGI_TEST_SERVICE": "streams"}
    proc, url = _start(
        [str(peer_python), "-I", PEER_WORKER, "--http", "--host", "127.0.0.1", "--port", "0"], tmp_path, env
    )

    async def body() -> None:
        logs: list[Message] = []
        async with ahttp_connect(StreamService, url, prefix="", on_log=logs.append) as proxy:
            await _stream_checks(proxy, logs)

    try:
        run(body, limit=120)
    finally:
        _stop(proc)


def _runner_against_asgi(peer_python: Path, tmp_path: Path, cap: int | None) -> dict[str, Any]:
    env = {**os.environ, "VGI_TEST_SERVICE": "conformance"}
    if cap is not None:
        env["VGI_TEST_MAX_RESPONSE_BYTES"] = str(cap)
    proc, port = uvicorn_server(env)
    try:
        return run_url_runner(peer_python, port, tmp_path)
    finally:
        stop(proc)


def test_runner_over_asgi_without_a_cap(peer_python: Path, tmp_path: Path) -> None:
    report = _runner_against_asgi(peer_python, tmp_path, None)
    assert report["failed"] == 0, _failures(report)
    assert {r["name"] for r in report["results"] if r["skipped"]} == CAP_TESTS | {PIPE_ONLY}
    assert (report["passed"], report["skipped"]) == (106, 7)  # as against the WSGI app


def test_runner_over_asgi_with_an_8_mib_cap(peer_python: Path, tmp_path: Path) -> None:
    report = _runner_against_asgi(peer_python, tmp_path, 8388608)
    assert report["failed"] == 0, _failures(report)
    assert {r["name"] for r in report["results"] if r["skipped"]} == EXTERNAL_CAP_TESTS | {PIPE_ONLY}
    assert (report["passed"], report["skipped"]) == (110, 3)  # as against the WSGI app
