"""Bad input over HTTP gets WIRE.md 8.9's status and body, and the server (a real process) keeps serving.

Every test runs against the WSGI app under waitress and the ASGI app under uvicorn: both adapt
the same HTTP rules, so routes, headers, tokens and status codes must not differ.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import zstandard

from tests.http.servers import spawn_port_printer, stop
from tests.services import StreamService
from tests.transports.factories import uvicorn_server
from tests.transports.turn_driver import frames
from vgi_rpc._core import keys
from vgi_rpc._core.framing import decode_messages
from vgi_rpc._core.invoke import RequestEncoder
from vgi_rpc._core.ipc import encode_stream
from vgi_rpc._core.messages import parse_error
from vgi_rpc._core.service import service_spec

APP = str(Path(__file__).resolve().parents[1] / "workers" / "http_app.py")
ARROW = {"Content-Type": "application/vnd.apache.arrow.stream"}
LIMIT = 1 << 20
SPEC = service_spec(StreamService)


class Server:
    def __init__(self, tmp: Path, kind: str = "waitress", **env: str) -> None:
        self.log = tmp / "server.log"
        environ = {
            **os.environ,
            "VGI_TEST_SERVICE": "streams",
            "VGI_TEST_SIGNING_KEY": "a-key-shared-by-every-worker-0123456789",
            "VGI_TEST_MAX_REQUEST_BYTES": str(LIMIT),
            **env,
        }
        with open(self.log, "wb") as log:
            if kind == "uvicorn":
                self.proc, port = uvicorn_server(environ, stderr=log)
            else:
                self.proc, port = spawn_port_printer([sys.executable, APP], env=environ, stderr=log)
        self.url = f"http://127.0.0.1:{port}/vgi"
        self.client = httpx.Client(timeout=30)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(self.url + path, content=body, headers={**ARROW, **(headers or {})})

    def close(self) -> None:
        self.client.close()
        stop(self.proc)

    def serves(self) -> None:
        """A good call still works."""
        reply = self.post("/StreamService/ping", request("ping"))
        assert reply.status_code == 200
        assert _items(reply)[0][0].column(0)[0].as_py() == "pong"


def request(method: str, **kwargs: Any) -> bytes:
    return RequestEncoder(SPEC, SPEC.methods[method]).encode((), kwargs)


def _items(reply: httpx.Response) -> Any:
    assert reply.headers["content-type"] == ARROW["Content-Type"]
    return [item for stream in frames(reply.content) for item in decode_messages(stream)[1]]


def _error(reply: httpx.Response) -> Any:
    (batch, md), *_ = _items(reply)
    assert batch.num_rows == 0 and md is not None
    return parse_error(md)


@pytest.fixture(scope="module", params=["waitress", "uvicorn"])
def kind(request: pytest.FixtureRequest) -> str:
    """The WSGI app under waitress, or the ASGI app under uvicorn."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("http"), kind)
    yield srv
    srv.close()
    assert b"Traceback" not in srv.log.read_bytes(), srv.log.read_text()[-3000:]


def test_unknown_route_and_wrong_verb_are_json(server: Server) -> None:
    for path in ("/nope", "/StreamService/ping/extra/more", "/StreamService/ping/sideways"):
        reply = server.post(path, request("ping"))
        assert reply.status_code == 404 and reply.headers["content-type"].startswith("application/json"), path
    outside = server.client.post(server.url.removesuffix("/vgi") + "/other", content=b"")
    assert outside.status_code == 404
    reply = server.client.get(server.url + "/StreamService/ping")
    assert reply.status_code == 405 and reply.headers["content-type"].startswith("application/json")
    server.serves()


def test_unknown_method_is_404_arrow_even_with_a_wrong_content_type(server: Server) -> None:
    reply = server.client.post(server.url + "/StreamService/nope", content=b"x", headers={"Content-Type": "text/plain"})
    assert reply.status_code == 404
    assert _error(reply).error_kind == "method_not_implemented"
    reply = server.post("/Nope/ping", request("ping"))
    assert reply.status_code == 404 and _error(reply).error_kind == "protocol_not_supported"
    server.serves()


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/vnd.apache.arrow.stream; charset=utf-8"])
def test_wrong_content_type_is_415_arrow(server: Server, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    reply = server.client.post(server.url + "/StreamService/ping", content=request("ping"), headers=headers)
    assert reply.status_code == 415
    assert _error(reply).error_type == "ProtocolError"
    server.serves()


@pytest.mark.parametrize("body", [b"", b"garbage, not arrow at all", request("ping")[:40], request("ping")[:-8]])
def test_garbage_and_truncated_bodies_are_400_arrow(server: Server, body: bytes) -> None:
    reply = server.post("/StreamService/ping", body)
    assert reply.status_code == 400
    assert _error(reply).error_type in ("MalformedStreamError", "ProtocolError")
    server.serves()


def test_bodies_over_the_limit_are_413_json_encoded_or_decoded(server: Server) -> None:
    reply = server.post("/StreamService/ping", b"\0" * (LIMIT + 1))
    assert reply.status_code == 413 and reply.headers["content-type"].startswith("application/json")
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * (LIMIT * 4))
    assert len(bomb) < LIMIT // 8
    reply = server.post("/StreamService/ping", bomb, {"Content-Encoding": "zstd"})
    assert reply.status_code == 413
    reply = server.post("/StreamService/ping", b"\x28\xb5\x2f\xfd garbage", {"Content-Encoding": "zstd"})
    assert reply.status_code == 400 and reply.headers["content-type"].startswith("application/json")
    reply = server.post("/StreamService/ping", request("ping"), {"Content-Encoding": "br"})
    assert reply.status_code == 415 and reply.headers["content-type"].startswith("application/json")
    ok = server.post(
        "/StreamService/ping", zstandard.ZstdCompressor().compress(request("ping")), {"Content-Encoding": "zstd"}
    )
    assert ok.status_code == 200
    server.serves()


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_32_kib_zstd_bomb_of_1_gib_is_refused_while_decoding(server: Server) -> None:
    piece = zstandard.ZstdCompressor(level=19).compress(b"\0" * (64 << 20))
    bomb = piece * 16  # 16 frames of 64 MiB of zeros: 1 GiB decoded
    assert len(bomb) < 33 << 10  # ~32 KiB: zstd's densest encoding of zeros (4-byte RLE blocks of 128 KiB)
    before = _vm_hwm_kib(server.proc.pid)
    start = time.monotonic()
    reply = server.post("/StreamService/ping", bomb, {"Content-Encoding": "zstd"})
    assert reply.status_code == 413
    assert time.monotonic() - start < 5
    assert _vm_hwm_kib(server.proc.pid) - before < 64 << 10  # peak memory grew by less than 64 MiB
    server.serves()


def test_bad_response_cap_header_is_400(server: Server) -> None:
    for value in ("0", "65535", "abc", "-1", str(2**53)):
        reply = server.post("/StreamService/ping", request("ping"), {"VGI-Accept-Max-Response-Bytes": value})
        assert reply.status_code == 400, value
    server.serves()


def _start_count(server: Server, principal: str | None = None) -> tuple[bytes, dict[bytes, bytes]]:
    headers = {"Authorization": f"Bearer {principal}"} if principal else {}
    reply = server.post("/StreamService/count/init", request("count", n=10), headers)
    assert reply.status_code == 200
    tokens = [md for _, md in _items(reply) if md and keys.STREAM_STATE in md]
    assert tokens
    return reply.content, tokens[-1]


def _turn(server: Server, md: dict[bytes, bytes], principal: str | None = None) -> httpx.Response:
    tick = pa.RecordBatch.from_pylist([], schema=pa.schema([]))
    body = bytes(encode_stream(pa.schema([]), [(tick, md)]).to_pybytes())
    headers = {"Authorization": f"Bearer {principal}"} if principal else {}
    return server.post("/StreamService/count/exchange", body, headers)


def test_stream_tokens_tampered_foreign_and_from_another_principal_are_400(server: Server) -> None:
    _, md = _start_count(server, "alice")
    assert _turn(server, md, "alice").status_code == 200
    token = bytearray(base64.b64decode(md[keys.STREAM_STATE]))
    for position in (0, 5, len(token) // 2, len(token) - 1):
        damaged = bytearray(token)
        damaged[position] ^= 0x40
        reply = _turn(server, {**md, keys.STREAM_STATE: base64.b64encode(bytes(damaged))}, "alice")
        assert reply.status_code == 400 and _error(reply).error_type == "StreamTokenError"
    for other in (None, "bob"):
        reply = _turn(server, md, other)
        assert reply.status_code == 400 and _error(reply).error_type == "StreamTokenError"
    # every part of the token pair is verified: the call token too
    call_token = bytearray(base64.b64decode(md[keys.CALL_STATE]))
    for position in (0, len(call_token) // 2, len(call_token) - 1):
        damaged = bytearray(call_token)
        damaged[position] ^= 0x01
        reply = _turn(server, {**md, keys.CALL_STATE: base64.b64encode(bytes(damaged))}, "alice")
        assert reply.status_code == 400 and "call token" in _error(reply).error_message
    _, other = _start_count(server, "alice")
    reply = _turn(server, {**md, keys.CALL_STATE: other[keys.CALL_STATE]}, "alice")
    assert reply.status_code == 400 and "another stream call" in _error(reply).error_message
    reply = _turn(server, {keys.STREAM_STATE: md[keys.STREAM_STATE]}, "alice")
    assert reply.status_code == 400 and "call token" in _error(reply).error_message
    reply = _turn(server, {keys.STREAM_STATE: b"not base64!"}, "alice")
    assert reply.status_code == 400
    reply = _turn(server, {}, "alice")
    assert reply.status_code == 400
    server.serves()


def test_an_expired_token_is_400(tmp_path: Path, kind: str) -> None:
    srv = Server(tmp_path, kind, VGI_TEST_TOKEN_TTL="0.5")
    try:
        _, md = _start_count(srv)
        time.sleep(1.0)
        reply = _turn(srv, md)
        assert reply.status_code == 400
        assert "expired" in _error(reply).error_message
        srv.serves()
    finally:
        srv.close()


def test_the_principal_reaches_the_implementation_as_ctx_auth(tmp_path: Path, kind: str) -> None:
    srv = Server(tmp_path, kind)  # its own server: the refused call below is logged with a traceback
    try:
        bearer = {"Authorization": "Bearer alice"}
        reply = srv.post("/StreamService/whoami", request("whoami"), bearer)
        assert _items(reply)[0][0].column(0)[0].as_py() == "alice"
        reply = srv.post("/StreamService/secret", request("secret"), bearer)
        assert _items(reply)[0][0].column(0)[0].as_py() == "for alice"
        reply = srv.post("/StreamService/secret", request("secret"))  # anonymous: the method refuses
        assert reply.status_code == 200 and reply.headers["x-vgi-rpc-error"] == "true"
        assert _error(reply).error_type == "PermissionError"
    finally:
        srv.close()


def test_cors_headers_when_configured(tmp_path: Path, kind: str) -> None:
    srv = Server(tmp_path, kind, VGI_TEST_CORS="*")
    try:
        origin = {"Origin": "https://example.test"}
        preflight = srv.client.options(srv.url + "/StreamService/ping", headers=origin)
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        reply = srv.post("/StreamService/ping", request("ping"), origin)
        assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == "*"
        assert "X-VGI-RPC-Error" in reply.headers["access-control-expose-headers"]
    finally:
        srv.close()


def test_authentication_failures_are_401_and_never_reach_the_implementation(server: Server) -> None:
    refused = {"Authorization": "Bearer reject"}
    for _ in range(3):
        reply = server.post("/StreamService/bump", request("bump"), refused)
        assert reply.status_code == 401 and reply.headers["content-type"].startswith("application/json")
        assert "refused" in reply.json()["reason"]
    first = _items(server.post("/StreamService/bump", request("bump")))[0][0].column(0)[0].as_py()
    assert first == 1  # none of the refused calls ran the method
    before = server.post("/StreamService/cancelled_count", request("cancelled_count"))
    reply = server.post(
        "/StreamService/cancelled_count", request("cancelled_count"), {"Authorization": "Bearer reject"}
    )
    assert reply.status_code == 401 and reply.headers["content-type"].startswith("application/json")
    assert "refused" in reply.json()["reason"]
    health = server.client.get(server.url + "/health", headers={"Authorization": "Bearer reject"})
    assert health.status_code == 200  # the health route is exempt
    assert before.status_code == 200
    server.serves()


def test_fuzz_gets_no_5xx_and_no_traceback(server: Server) -> None:
    """Random and mutated bodies on every route, from several threads (fixed seed)."""
    seeds = [request("ping"), request("count", n=3), request("count_with_header", n=2), request("running_sum")]
    routes = [
        "/StreamService/ping",
        "/StreamService/count/init",
        "/StreamService/count/exchange",
        "/StreamService/running_sum/init",
        "/StreamService/running_sum/exchange",
        "/health",
        "/__describe__",
    ]
    statuses: list[int] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=30) as client:
            for _ in range(600):
                body = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(0, 8)):
                    body[rng.randrange(len(body))] = rng.randrange(256)
                if rng.random() < 0.2:
                    body = bytearray(rng.randbytes(rng.randint(0, 300)))
                if rng.random() < 0.2:
                    body = body[: rng.randrange(len(body) + 1)]
                headers = dict(ARROW)
                if rng.random() < 0.1:
                    headers["Content-Encoding"] = "zstd"
                reply = client.post(server.url + rng.choice(routes), content=bytes(body), headers=headers)
                statuses.append(reply.status_code)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(statuses) == 2400
    assert all(s < 500 for s in statuses), sorted(set(statuses))
    server.serves()


def test_key_rotation_across_servers(tmp_path: Path, kind: str) -> None:
    """A stream started under the old key goes on under the new one (old key kept to verify);
    a server that no longer lists the old key refuses the old token with 400."""
    old, new = "the-old-signing-key-0123456789abcdef", "the-new-signing-key-0123456789abcdef"
    for name in "abc":
        (tmp_path / name).mkdir()
    before = Server(tmp_path / "a", "waitress", VGI_TEST_SIGNING_KEY=old)  # a stream moves from WSGI to *kind*
    rotating = Server(tmp_path / "b", kind, VGI_TEST_SIGNING_KEY=new, VGI_TEST_PREVIOUS_KEYS=old)
    after = Server(tmp_path / "c", kind, VGI_TEST_SIGNING_KEY=new)
    try:
        _, md = _start_count(before)
        first = _turn(before, md)
        assert first.status_code == 200
        old_tokens = [m for _, m in _items(first) if m and keys.STREAM_STATE in m][-1]
        moved = _turn(rotating, {**md, **old_tokens})  # the next turn on a host with the new key
        assert moved.status_code == 200
        assert _items(moved)[0][0].column(0)[0].as_py() == 2  # the stream went on: 0 at start, 1, then 2
        new_tokens = [m for _, m in _items(moved) if m and keys.STREAM_STATE in m][-1]
        refused = _turn(after, {**md, **old_tokens})  # the old key is gone: 400
        assert refused.status_code == 400 and _error(refused).error_type == "StreamTokenError"
        # the cursor the rotating host minted is under the new key, but the call token came from
        # the start under the old one: a host without the old key refuses it too, until the stream ends
        assert _turn(rotating, {**md, **new_tokens}).status_code == 200
    finally:
        for srv in (before, rotating, after):
            srv.close()


def test_a_batch_naming_another_method_than_the_path_is_refused(server: Server) -> None:
    # ping's request (a template once ping has been served) posted to whoami's path, twice: the
    # template path must not answer for the method the batch names either
    server.serves()
    for _ in range(2):
        reply = server.post("/StreamService/whoami", request("ping"))
        assert reply.status_code == 400
        error = _error(reply)
        assert error.error_type == "ProtocolError"
        assert "names method 'ping' but the path 'whoami'" in str(error)
    reply = server.post("/StreamService/count/init", request("ping"))
    assert reply.status_code == 400 and "but the path 'count'" in str(_error(reply))
    server.serves()
