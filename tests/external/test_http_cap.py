"""max_externalized_response_bytes over HTTP: advertised, and a bigger batch refused as 0.52.2 refuses it.

Our worker (``--max-externalized-response-bytes``) with S3 on: a result over the cap is an
``RpcError`` of type ``RuntimeError`` naming the cap, nothing is uploaded, and the next call works;
one under the cap goes through the bucket. The reference client sees the same over HTTP.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.external.service import Blobs, block
from tests.external.stores import Store, objects
from tests.external.test_s3_roundtrip import config, worker_flags
from tests.http.servers import spawn_port_printer, stop
from vgi_rpc import RpcError
from vgi_rpc.http import http_connect

WORKER = str(Path(__file__).resolve().parents[1] / "workers" / "blobs_worker.py")
ROOT = Path(__file__).resolve().parents[2]
CAP = 500_000


@pytest.fixture
def capped(moto_server: Store, bucket: str) -> Iterator[str]:
    cmd = [sys.executable, WORKER, "--http", "--max-externalized-response-bytes", str(CAP)]
    proc, port = spawn_port_printer([*cmd, *worker_flags(moto_server, bucket, None)])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_a_result_over_the_cap_is_refused_before_upload(moto_server: Store, bucket: str, capped: str) -> None:
    headers = httpx.options(f"{capped}/vgi/health", timeout=10).headers
    assert headers["VGI-Externalization-Enabled"] == "true"
    assert headers["VGI-Max-Externalized-Response-Bytes"] == str(CAP)
    with http_connect(Blobs, capped, external_location=config(moto_server, bucket, None)) as proxy:
        with pytest.raises(RpcError) as caught:
            proxy.make(CAP + 1)
        assert caught.value.error_type == "RuntimeError"
        assert caught.value.error_message == (
            f"Externalised payload exceeds max_externalized_response_bytes ({CAP + 1 + 8} > {CAP})"
        )
        assert objects(moto_server, bucket) == {}
        assert proxy.make(CAP - 100) == block(CAP - 100)  # under the cap: through the bucket
        assert len(objects(moto_server, bucket)) == 1
        with pytest.raises(RpcError, match="max_externalized_response_bytes"), proxy.blocks(CAP + 1, 2) as session:
            list(session)
        assert len(objects(moto_server, bucket)) == 1


PEER_CLIENT = """
import json, sys
sys.path.append(sys.argv[1])
import vgi_rpc
from vgi_rpc.http import http_connect
from tests.external.service import Blobs, block

storage = vgi_rpc.S3Storage(sys.argv[3], endpoint_url=sys.argv[4])
config = vgi_rpc.ExternalLocationConfig(storage=storage, url_validator=None)
out = {}
with http_connect(Blobs, sys.argv[2], prefix="/vgi", external_location=config) as proxy:
    out["under"] = proxy.make(size=400_000) == block(400_000)
    try:
        proxy.make(size=600_000)
    except vgi_rpc.RpcError as exc:
        out["over"] = [exc.error_type, exc.error_message]
    out["after"] = proxy.make(size=1_000) == block(1_000)
    blocks = enumerate(proxy.blocks(size=300_000, count=2))
    out["blocks"] = [bytes(b.batch.column(0)[0].as_py()) == block(300_000, i) for i, b in blocks]
print(json.dumps(out))
"""


@pytest.mark.interop
def test_the_reference_http_client_against_our_capped_worker(
    run_peer,
    moto_server: Store,
    bucket: str,
    capped: str,  # type: ignore[no-untyped-def]
) -> None:
    done = run_peer(PEER_CLIENT, str(ROOT), capped, bucket, moto_server.url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "under": True,
        # its error_message keeps the type prefix of the log message, as against its own server
        "over": [
            "RuntimeError",
            f"RuntimeError: Externalised payload exceeds max_externalized_response_bytes (600008 > {CAP})",
        ],
        "after": True,
        "blocks": [True, True],
    }
    assert len(objects(moto_server, bucket)) == 3  # the result under the cap and the two blocks
