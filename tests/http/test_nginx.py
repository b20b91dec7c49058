"""Two gunicorn hosts behind a real nginx (docs/nginx-vgi-rpc.conf, the file users copy), round-robin.

Host A on 127.0.0.2 and host B on 127.0.0.3 (two workers each, one signing key), nginx on
127.0.0.1. Streams complete with turns served by both hosts; a rolling restart of one host loses
no call and no turn.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.http.servers import free_port, stop, wait_healthy
from tests.refpeer import in_ci
from tests.services import StreamService
from vgi_rpc import AnnotatedBatch
from vgi_rpc.http import http_connect

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "docs" / "nginx-vgi-rpc.conf"
ADDRESSES = ("127.0.0.2", "127.0.0.3")


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        if in_ci():
            pytest.fail("nginx is not installed (scripts/test installs Debian's package)")
        pytest.skip("nginx is not installed")
    return found


@dataclass
class Deployment:
    tmp: Path
    port: int  # every host's gunicorn port (on its own address)
    env: dict[str, str]
    hosts: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start_host(self, address: str) -> None:
        cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"{address}:{self.port}"]
        cmd += ["--graceful-timeout", "10", "--chdir", str(ROOT), "tests.workers.http_app:app"]
        self.hosts[address] = subprocess.Popen(
            cmd, env=self.env, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL
        )
        wait_healthy(f"http://{address}:{self.port}/vgi/health")

    def host_of(self, pid: int) -> str:
        """The address of the host whose gunicorn master is the parent of worker *pid*."""
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        for address, proc in self.hosts.items():
            if proc.pid == parent:
                return address
        raise AssertionError(f"pid {pid} is no worker of the hosts")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    nginx = _nginx()
    env = {
        **os.environ,
        "VGI_TEST_SERVICE": "streams",
        "VGI_TEST_SIGNING_KEY": "one-key-for-every-host-0123456789abcdef",
        "VGI_TEST_COUNTER_FILE": str(tmp_path / "counters"),
    }
    dep = Deployment(tmp_path, free_port(), env)
    try:
        for address in ADDRESSES:
            dep.start_host(address)
        listen = free_port()
        site = CONF.read_text()
        site = site.replace("127.0.0.2:8000", f"127.0.0.2:{dep.port}").replace(
            "127.0.0.3:8000", f"127.0.0.3:{dep.port}"
        )
        site = site.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{listen}")
        (tmp_path / "site.conf").write_text(site)
        (tmp_path / "nginx.conf").write_text(
            f"user root;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
            f"events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
            f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/site.conf;\n}}\n"
        )
        dep.nginx = subprocess.Popen(
            [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
            start_new_session=True,
        )
        dep.url = f"http://127.0.0.1:{listen}"
        wait_healthy(f"{dep.url}/vgi/health")
        yield dep
    finally:
        if dep.nginx is not None:
            stop(dep.nginx)
        for proc in dep.hosts.values():
            stop(proc)


def _pids_of_streams(url: str, streams: int = 2, turns: int = 30) -> list[list[int]]:
    """Run *streams* producer streams at once (so both hosts stay busy); the worker pid of each turn."""
    seen: list[list[int]] = []

    def run() -> None:
        with http_connect(StreamService, url) as proxy:
            seen.append([b.batch.column(0)[0].as_py() for b in proxy.pids(n=turns, delay=0.01)])

    threads = [threading.Thread(target=run) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [len(p) for p in seen] == [turns] * streams
    return seen


def test_turns_of_one_stream_are_served_by_both_hosts(deployment: Deployment) -> None:
    # one stream alone: nginx's round-robin sends its successive turns to alternate hosts (two
    # streams at once can interleave so that each keeps meeting the same host)
    (pids,) = _pids_of_streams(deployment.url, streams=1)
    hosts = {deployment.host_of(pid) for pid in pids}
    assert hosts == set(ADDRESSES), hosts  # one stream, turns on 127.0.0.2 and 127.0.0.3
    with http_connect(StreamService, deployment.url) as proxy:
        assert [b.batch.column(0)[0].as_py() for b in proxy.count(n=5)] == [0, 1, 2, 3, 4]
        with proxy.running_sum() as session:
            totals = [
                session.exchange(AnnotatedBatch.from_pydict({"value": [v]})).batch.column(0)[0].as_py()
                for v in (1.0, 2.0, 3.0, 4.0)
            ]
        assert totals == [1.0, 3.0, 6.0, 10.0]


def test_a_rolling_restart_loses_no_call_and_no_turn(deployment: Deployment) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    calls = [0]

    def client() -> None:
        with http_connect(StreamService, deployment.url) as proxy:
            while not done.is_set():
                try:
                    assert proxy.ping() == "pong"
                    assert [b.batch.column(0)[0].as_py() for b in proxy.count(n=4)] == [0, 1, 2, 3]
                    with proxy.running_sum() as session:
                        got = [
                            session.exchange(AnnotatedBatch.from_pydict({"value": [1.0]})).batch.column(0)[0].as_py()
                            for _ in range(3)
                        ]
                    assert got == [1.0, 2.0, 3.0]
                    calls[0] += 1
                except BaseException as exc:
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    host_a = deployment.hosts[ADDRESSES[0]]
    os.killpg(host_a.pid, signal.SIGTERM)  # gunicorn drains: finishes what it serves, takes no new requests
    host_a.wait(timeout=30)
    before = calls[0]
    time.sleep(1.0)
    assert not errors, errors
    assert calls[0] > before  # host B carried the load alone
    deployment.start_host(ADDRESSES[0])  # back
    time.sleep(1.0)
    done.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    deadline = time.monotonic() + 20  # nginx tries a failed host again after its fail_timeout (5 s)
    served: set[str] = set()
    while ADDRESSES[0] not in served and time.monotonic() < deadline:
        served = {deployment.host_of(pid) for pids in _pids_of_streams(deployment.url, turns=10) for pid in pids}
        time.sleep(0.5)
    assert ADDRESSES[0] in served  # the restarted host serves again


def test_a_host_killed_mid_turn(deployment: Deployment) -> None:
    """SIGKILL while a host runs a turn: nginx sends the turn to the other host (the config allows
    retrying; the turn carries its state, so it starts again from the same point); nothing hangs,
    the stream completes with the right data and the next call succeeds."""
    results: list[list[int]] = []

    def run() -> None:
        with http_connect(StreamService, deployment.url, timeout=60) as proxy:
            results.append([b.batch.column(0)[0].as_py() for b in proxy.slow_count(n=4, delay=0.5)])

    thread = threading.Thread(target=run)
    start = time.monotonic()
    thread.start()
    time.sleep(0.8)  # the second or third turn is running, on one host or the other
    os.killpg(deployment.hosts[ADDRESSES[0]].pid, signal.SIGKILL)
    thread.join(timeout=60)
    assert not thread.is_alive() and time.monotonic() - start < 30
    assert results == [[0, 1, 2, 3]]
    with http_connect(StreamService, deployment.url) as proxy:
        assert proxy.ping() == "pong"
