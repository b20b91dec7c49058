"""Round trips through a GCS emulator (gcp-storage-emulator on 127.0.0.1) with generated service-account
credentials: V4 signed URLs, results and parameters above and below the threshold, and stream batches,
over pipe, subprocess and HTTP. The emulator sends no Content-Encoding, so objects are uncompressed.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.external.gcs_keys import blobs, create_bucket, credentials, write_key
from tests.external.service import Blobs, BlobsImpl, block
from tests.external.stores import Store
from tests.http.servers import spawn_port_printer, stop
from vgi_rpc import ExternalLocationConfig, GCSStorage, connect, serve_pipe
from vgi_rpc.http import http_connect

WORKER = str(Path(__file__).resolve().parents[1] / "workers" / "gcs_worker.py")
BIG, SMALL = 300_000, 1_000


class GcsEnv:
    def __init__(self, store: Store, key: Path) -> None:
        self.store = store
        self.bucket = f"vgi-test-{uuid.uuid4().hex[:12]}"
        create_bucket(store.url, self.bucket)
        storage = GCSStorage(self.bucket, project="vgi-test", credentials=credentials(key), endpoint_url=store.url)
        self.config = ExternalLocationConfig(storage, externalize_threshold_bytes=100_000, url_validator=None)
        self.env = {"VGI_TEST_GCS_KEY": str(key), "VGI_TEST_GCS_URL": store.url, "VGI_TEST_BUCKET": self.bucket}
        self.http: tuple[Any, int] | None = None

    @contextmanager
    def open(self, kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        if kind == "pipe":
            with serve_pipe(Blobs, BlobsImpl(), external_location=self.config) as proxy:
                yield proxy
        elif kind == "subprocess":
            with connect(Blobs, [sys.executable, WORKER], external_location=self.config) as proxy:
                yield proxy
        else:
            if self.http is None:
                self.http = spawn_port_printer([sys.executable, WORKER, "--http"])
            with http_connect(Blobs, f"http://127.0.0.1:{self.http[1]}", external_location=self.config) as proxy:
                yield proxy

    def count(self) -> int:
        return len(blobs(self.store.url, self.bucket))


@pytest.fixture(scope="module")
def gcs(gcs_emulator: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEnv]:
    env = GcsEnv(gcs_emulator, write_key(tmp_path_factory.mktemp("gcs") / "key.json"))
    try:
        yield env
    finally:
        if env.http is not None:
            stop(env.http[0])


@pytest.mark.parametrize("kind", ["pipe", "subprocess", "http"])
def test_gcs_round_trips(gcs: GcsEnv, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = gcs.count()
    with gcs.open(kind, monkeypatch) as proxy:
        assert proxy.make(SMALL) == block(SMALL)
        assert proxy.size_of(block(SMALL)) == SMALL
        assert gcs.count() == before
        assert proxy.make(BIG) == block(BIG)
        assert gcs.count() == before + 1
        assert proxy.size_of(block(BIG)) == BIG
        assert gcs.count() == before + 2
        got = [bytes(b.batch.column(0)[0].as_py()) for b in proxy.blocks(BIG, 2)]
        assert got == [block(BIG, 0), block(BIG, 1)]
        assert gcs.count() == before + 4


def test_gcs_upload_urls_are_signed_pairs(gcs: GcsEnv) -> None:
    import httpx
    import pyarrow as pa

    storage = gcs.config.storage
    assert isinstance(storage, GCSStorage)
    pair = storage.generate_upload_url(pa.schema([]))
    assert "X-Goog-Signature=" in pair.upload_url and "X-Goog-Signature=" in pair.download_url
    assert httpx.put(pair.upload_url, content=b"payload", timeout=30).status_code == 200
    assert httpx.get(pair.download_url, timeout=30).content == b"payload"
