"""The default HTTP session (``http.client`` keep-alive connections) against a real waitress server on loopback.

The transport contract suite runs every call through it under waitress and gunicorn; these tests
pin what it must do on its own: reuse connections, replace ones the server closed, enforce the
response cap whatever the framing, stay correct when threads share it, and fail with the right
error.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waitress.server import create_server

from tests.http.servers import free_port, stop
from tests.services import Calculator
from tests.transports.factories import HTTP_APP, ROOT
from vgi_rpc.errors import RpcTimeoutError, TransportError
from vgi_rpc.http import http_connect
from vgi_rpc.http.coding import BodyTooLarge
from vgi_rpc.http.session import HttpxSession, StdlibSession, default_session

PEERS: list[str] = []  # the client port of each request the app saw


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    PEERS.append(environ["REMOTE_PORT"])
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if path == "/slow":
        time.sleep(1.0)
    if path == "/chunked":  # no Content-Length: waitress sends it chunked
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iter([b"x" * 50_000] * 4)
    if path == "/big":
        body = b"y" * 200_000
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = create_server(app, host="127.0.0.1", port=0, threads=8, channel_timeout=1, cleanup_interval=1)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)


def test_keep_alive_reuses_one_connection(url: str) -> None:
    session = StdlibSession()
    PEERS.clear()
    for k in range(20):
        reply = session.send("POST", url + "/echo", b"%d" % k, {}, 1 << 20)
        assert (reply.status, reply.body) == (200, b"%d" % k)
        assert reply.headers["content-type"] == "application/octet-stream"  # names lower-cased
    session.close()
    assert len(set(PEERS)) == 1


def test_an_idle_connection_the_server_closed_is_replaced(url: str) -> None:
    session = StdlibSession()
    PEERS.clear()
    assert session.send("POST", url + "/echo", b"a", {}, 100).body == b"a"
    time.sleep(3)  # waitress closes channels idle for over a second
    assert session.send("POST", url + "/echo", b"b", {}, 100).body == b"b"
    session.close()
    assert len(set(PEERS)) == 2


@pytest.mark.parametrize("path", ["/big", "/chunked"])
def test_the_response_cap_holds_with_and_without_content_length(url: str, path: str) -> None:
    session = StdlibSession()
    with pytest.raises(BodyTooLarge):
        session.send("GET", url + path, None, {}, 100_000)
    assert len(session.send("GET", url + path, None, {}, 200_000).body) == 200_000
    assert session.send("POST", url + "/echo", b"after", {}, 100).body == b"after"
    session.close()


def test_threads_share_one_session(url: str) -> None:
    session = StdlibSession()
    wrong: list[bytes] = []

    def run(k: int) -> None:
        for n in range(50):
            body = b"%d-%d" % (k, n)
            reply = session.send("POST", url + "/echo", body, {}, 100)
            if reply.body != body:
                wrong.append(reply.body)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    session.close()
    assert wrong == []


def test_failures_are_transport_errors_and_timeouts_rpc_timeouts(url: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}/echo"
    with pytest.raises(TransportError) as info:
        StdlibSession().send("POST", refused, b"x", {}, 100)
    assert not isinstance(info.value, RpcTimeoutError) and "refused" in str(info.value).lower()
    session = StdlibSession(timeout=0.2)
    with pytest.raises(RpcTimeoutError):
        session.send("POST", url + "/slow", b"x", {}, 100)
    assert session.send("POST", url + "/echo", b"next", {}, 100).body == b"next"
    session.close()
    with pytest.raises(TransportError, match="not an http"):
        StdlibSession().send("GET", "ftp://127.0.0.1/x", None, {}, 100)


def test_a_proxy_in_the_environment_selects_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(default_session("http://127.0.0.1:8000", None), StdlibSession)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    proxied = default_session("http://example.test:8000", None)
    assert isinstance(proxied, HttpxSession)
    proxied.close()
    monkeypatch.setenv("NO_PROXY", "example.test")
    assert isinstance(default_session("http://example.test:8000", None), StdlibSession)


def _self_signed(where: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = where / "cert.pem", where / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_verifies_the_server_against_ssl_cert_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    env = {**os.environ, "VGI_TEST_SERVICE": "calc", "VGI_TEST_SIGNING_KEY": "tls-test-key-0123456789abcdef"}
    cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "--certfile", str(cert)]
    cmd += ["--keyfile", str(key), "--chdir", str(ROOT), HTTP_APP]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and proc.poll() is None, "gunicorn did not listen"
            time.sleep(0.1)
        url = f"https://127.0.0.1:{port}"
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"), http_connect(Calculator, url) as proxy:
            proxy.add(a=1.0, b=2.0)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with http_connect(Calculator, url) as proxy:
            assert [proxy.add(a=1.0, b=float(k)) for k in range(3)] == [1.0, 2.0, 3.0]
    finally:
        stop(proc)


def _capture_one_request(reply: bytes) -> tuple[str, list[bytes]]:
    """A one-shot raw server on loopback: (its URL, a list that receives the request bytes it read)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + 5:
                data += conn.recv(65536)
            got.append(data)
            conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", got


def test_the_request_on_the_wire() -> None:
    url, got = _capture_one_request(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    session = StdlibSession()
    reply = session.send("POST", url + "/p/q?x=1", b"hello", {"Content-Type": "a/b", "X-Other": "1"}, 100)
    assert (reply.status, reply.body) == (200, b"ok")
    head, body = got[0].split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /p/q?x=1 HTTP/1.1"
    assert sorted(lines[1:]) == sorted(
        [f"Host: {url[len('http://') :]}".encode(), b"Content-Type: a/b", b"X-Other: 1", b"Content-Length: 5"]
    )
    assert body == b"hello"


def test_a_header_that_would_split_the_request_is_refused(url: str) -> None:
    session = StdlibSession()
    for name, value in (("X-A", "1\r\nX-Injected: 2"), ("X B", "1"), ("X-C:", "1")):
        with pytest.raises(TransportError, match="invalid HTTP header"):
            session.send("POST", url + "/echo", b"x", {name: value}, 100)
    with pytest.raises(TransportError, match="non-ASCII"):
        session.send("POST", url + "/échø", b"x", {}, 100)
    assert session.send("POST", url + "/echo", b"still", {}, 100).body == b"still"
    session.close()


def test_a_host_name_is_looked_up(url: str) -> None:
    session = StdlibSession()
    named = url.replace("127.0.0.1", "localhost")
    try:
        reply = session.send("POST", named + "/echo", b"by name", {}, 100)
    except TransportError as exc:  # localhost resolving to ::1 only, where nothing listens
        pytest.fail(f"localhost did not reach the IPv4 server: {exc}")
    assert reply.body == b"by name"
    session.close()
