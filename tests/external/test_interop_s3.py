"""Acceptance 2: pointer batches cross between us and the reference 0.52.2, against the same moto server.

Our client against its worker: we resolve its result and stream pointers, and it resolves the
parameter pointers our client uploads. Its client against our worker: it resolves our pointers.
Uncompressed, zstd and gzip objects; the objects are counted in the bucket.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.external.service import BLOCK_SCHEMA, Blobs, block
from tests.external.stores import Store, objects
from tests.external.test_s3_roundtrip import BIG, SMALL, config, worker_flags
from vgi_rpc import Compression, Message, connect

pytestmark = pytest.mark.interop
WORKERS = Path(__file__).resolve().parents[1] / "workers"
ROOT = Path(__file__).resolve().parents[2]
COMPRESSIONS = {"none": None, "zstd": Compression(), "gzip": Compression("gzip")}


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
def test_our_client_against_the_reference_worker(
    peer_python: Path, moto_server: Store, bucket: str, compression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VGI_TEST_S3_URL", moto_server.url)
    monkeypatch.setenv("VGI_TEST_BUCKET", bucket)
    if COMPRESSIONS[compression] is not None:
        monkeypatch.setenv("VGI_TEST_COMPRESSION", compression)
    logs: list[Message] = []
    cmd = [str(peer_python), "-I", str(WORKERS / "peer_blobs_worker.py")]
    with connect(Blobs, cmd, on_log=logs.append, external_location=config(moto_server, bucket, None)) as proxy:
        assert proxy.make(BIG) == block(BIG)  # its pointer, resolved here
        assert len(objects(moto_server, bucket)) == 1
        assert proxy.make(SMALL) == block(SMALL)
        assert proxy.size_of(block(BIG)) == BIG  # our pointer, resolved there
        assert len(objects(moto_server, bucket)) == 2
        got = [bytes(b.batch.column(0)[0].as_py()) for b in proxy.blocks(BIG, 2)]
        assert got == [block(BIG, 0), block(BIG, 1)]
        assert len(objects(moto_server, bucket)) == 4
    coding = compression if compression != "none" else None
    heads = objects(moto_server, bucket).values()
    # three objects from its worker (with its compression), one parameter from our client (uncompressed)
    assert sorted((h.get("ContentEncoding") or "") for h in heads) == sorted([coding or ""] * 3 + [""])
    assert [m.message for m in logs] == [f"making {BIG} bytes", f"making {SMALL} bytes", "block 0", "block 1"]


PEER_CLIENT = """
import json, sys
sys.path.append(sys.argv[1])
import vgi_rpc
from tests.external.service import BLOCK_SCHEMA, Blobs, block

url, bucket, worker = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
storage = vgi_rpc.S3Storage(bucket, endpoint_url=url)
config = vgi_rpc.ExternalLocationConfig(storage=storage, externalize_threshold_bytes=100_000, url_validator=None)
logs = []
with vgi_rpc.connect(Blobs, worker, on_log=logs.append, external_location=config) as proxy:
    out = {
        "big": proxy.make(size=300_000) == block(300_000),
        "small": proxy.make(size=1_000) == block(1_000),
        "param": proxy.size_of(data=block(300_000)),
        "blocks": [
            bytes(b.batch.column(0)[0].as_py()) == block(300_000, i)
            for i, b in enumerate(proxy.blocks(size=300_000, count=2))
        ],
    }
out["logs"] = [m.message for m in logs]
print(json.dumps(out))
"""


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
def test_reference_client_against_our_worker(
    run_peer,
    moto_server: Store,
    bucket: str,
    compression: str,  # type: ignore[no-untyped-def]
) -> None:
    worker = [
        sys.executable,
        str(WORKERS / "blobs_worker.py"),
        *worker_flags(moto_server, bucket, COMPRESSIONS[compression]),
    ]
    done = run_peer(PEER_CLIENT, str(ROOT), moto_server.url, bucket, json.dumps(worker))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "big": True,
        "small": True,
        "param": BIG,
        "blocks": [True, True],
        "logs": [f"making {BIG} bytes", f"making {SMALL} bytes", "block 0", "block 1"],
    }
    heads = objects(moto_server, bucket)
    coding = COMPRESSIONS[compression].algorithm if COMPRESSIONS[compression] else None
    # our worker wrote the big result and the two blocks; its client sends parameters inline on a pipe
    assert [h.get("ContentEncoding") for h in heads.values()] == [coding] * 3


def test_our_http_client_against_the_reference_http_server(
    peer_python: Path, moto_server: Store, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.http.servers import spawn_port_printer, stop
    from vgi_rpc.http import http_connect

    monkeypatch.setenv("VGI_TEST_S3_URL", moto_server.url)
    monkeypatch.setenv("VGI_TEST_BUCKET", bucket)
    proc, port = spawn_port_printer([str(peer_python), "-I", str(WORKERS / "peer_blobs_http.py")])
    logs: list[Message] = []
    try:
        url = f"http://127.0.0.1:{port}"
        with http_connect(Blobs, url, on_log=logs.append, external_location=config(moto_server, bucket, None)) as p:
            assert p.make(BIG) == block(BIG)
            got = [bytes(b.batch.column(0)[0].as_py()) for b in p.blocks(BIG, 3)]
            assert got == [block(BIG, i) for i in range(3)]
            assert p.size_of(block(BIG)) == BIG  # our pointer, resolved by its HTTP server
            with p.sizes() as session:  # exchange turns: its pointers carry the stream tokens
                for size in (BIG, SMALL, BIG):
                    out = session.exchange(pa.record_batch([pa.array([block(size)], pa.binary())], schema=BLOCK_SCHEMA))
                    assert out.batch.column(0)[0].as_py() == block(size)
    finally:
        stop(proc)
    assert [m.message for m in logs] == [f"making {BIG} bytes", "block 0", "block 1", "block 2"]
    assert len(objects(moto_server, bucket)) == 1 + 3 + 1 + 4  # make, 3 blocks, a parameter, 2 x (input + output)
