"""Real object stores for tests: a moto S3 server and a GCS emulator, processes on 127.0.0.1 stopped by PID."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.http.servers import free_port, stop, wait_healthy

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Store:
    """A running store: its process and base URL."""

    proc: subprocess.Popen[bytes]
    url: str
    log: str | None = None

    def close(self) -> None:
        stop(self.proc)
        if self.log is not None:
            Path(self.log).unlink(missing_ok=True)


def start_moto(timeout: float = 30) -> Store:
    """``python -m moto.server`` on a free port of 127.0.0.1 (it prints its URL on stderr, kept in a file)."""
    log = tempfile.NamedTemporaryFile(prefix="vgi-moto-", suffix=".log", delete=False)  # noqa: SIM115
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]
    env = {**os.environ, **S3_ENV}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", Path(log.name).read_text(errors="replace"))
        if found:
            url = found.group(1)
            wait_healthy(url + "/moto-api/")
            return Store(proc, url, log.name)
        time.sleep(0.1)
    stop(proc)
    Path(log.name).unlink(missing_ok=True)
    raise RuntimeError(f"moto did not start within {timeout} s: {Path(log.name).read_text(errors='replace')[-500:]}")


def start_gcs_emulator(timeout: float = 30) -> Store:
    """gcp-storage-emulator (in memory) on a free port of 127.0.0.1."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/", timeout=timeout)
    except RuntimeError:
        stop(proc)
        raise
    return Store(proc, url)


def s3_client(store: Store) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=store.url, region_name="us-east-1", **_keys())


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"]}


def new_bucket(store: Store) -> str:
    name = f"vgi-test-{uuid.uuid4().hex[:12]}"
    s3_client(store).create_bucket(Bucket=name)
    return name


def objects(store: Store, bucket: str) -> dict[str, dict[str, Any]]:
    """Key -> head_object() of every object in *bucket*."""
    s3 = s3_client(store)
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.head_object(Bucket=bucket, Key=o["Key"]) for o in listed}


def object_batches(store: Store, bucket: str, key: str) -> list[tuple[int, dict[bytes, bytes]]]:
    """(rows, metadata) of each batch in the IPC stream an object holds (decoded per its Content-Encoding)."""
    import gzip

    import pyarrow as pa
    import zstandard

    got = s3_client(store).get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    coding = got.get("ContentEncoding")
    if coding == "zstd":
        body = zstandard.ZstdDecompressor().stream_reader(body).read()
    elif coding == "gzip":
        body = gzip.decompress(body)
    reader = pa.ipc.open_stream(body)
    out = []
    while True:
        try:
            batch, md = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            return out
        out.append((batch.num_rows, dict(md) if md else {}))
