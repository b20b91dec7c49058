"""A 256 MiB result through S3 offload (a local moto server) versus inline over HTTP.

    .venv/bin/python benchmarks/external_bulk.py [--rounds 3] [--mib 256]

One worker serves ``Blobs.make(size)`` over HTTP (``run_server --http``, threaded wsgiref) twice:
inline, and with ``--external-s3-*`` flags (threshold 1 MiB; uncompressed and zstd). The client
is ``RpcConnection`` over ``HttpDriver`` with a 1 GiB response cap (the default 256 MiB cap is
below a 256 MiB result plus its IPC framing), and, for S3, a config whose ``max_fetch_bytes`` is
1 GiB, fetching in parallel 8 MiB ranged GETs (the default above 64 MiB) or, for "one GET", in
one request. The payload repeats a 4 KiB pattern, so zstd shrinks it to almost nothing: that row
shows the cost of the round trip through the store, not of compression on real data. Times
cover the whole call: build, (upload, fetch,) decode. Rounds interleave the modes; the table
shows the best and median MB/s of result bytes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.external.service import Blobs  # noqa: E402
from tests.external.stores import S3_ENV, new_bucket, start_moto  # noqa: E402
from tests.http.servers import spawn_port_printer, stop  # noqa: E402
from vgi_rpc import ExternalLocationConfig, FetchConfig, RpcConnection, S3Storage  # noqa: E402
from vgi_rpc.http.client import HttpDriver  # noqa: E402

WORKER = str(ROOT / "tests" / "workers" / "blobs_worker.py")
GIB = 1 << 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    size = args.mib << 20
    os.environ.update(S3_ENV)
    store = start_moto()
    procs = []
    try:
        bucket = new_bucket(store)
        s3 = ["--external-s3-bucket", bucket, "--external-s3-endpoint", store.url, "--external-allow-http"]
        modes = {"inline": [], "s3": s3, "s3+zstd": [*s3, "--external-compression", "zstd"]}
        urls = {}
        for mode, flags in modes.items():
            proc, port = spawn_port_printer([sys.executable, WORKER, "--http", *flags])
            procs.append(proc)
            urls[mode] = f"http://127.0.0.1:{port}"
        storage = S3Storage(bucket, endpoint_url=store.url, region_name="us-east-1")
        ranged = ExternalLocationConfig(storage, url_validator=None, fetch_config=FetchConfig(max_fetch_bytes=GIB))
        one_get = FetchConfig(max_fetch_bytes=GIB, parallel_threshold_bytes=GIB, chunk_size_bytes=GIB)
        configs = {"inline": None, "s3": ranged, "s3+zstd": ranged}
        configs["s3, one GET"] = ExternalLocationConfig(storage, url_validator=None, fetch_config=one_get)
        urls["s3, one GET"] = urls["s3"]
        seconds: dict[str, list[float]] = {mode: [] for mode in configs}
        for _ in range(args.rounds):
            for mode, external in configs.items():
                driver = HttpDriver(urls[mode], max_response_bytes=GIB, timeout=600)
                with RpcConnection(Blobs, driver, external_location=external) as proxy:
                    start = time.perf_counter()
                    got = proxy.make(size)
                    seconds[mode].append(time.perf_counter() - start)
                    assert len(got) == size
                    del got
                driver.close()
        print(f"{args.mib} MiB result, {args.rounds} rounds (MB/s of result bytes; 1 MB = 10^6 bytes)\n")
        print("| mode | best MB/s | median MB/s | best s |")
        print("|---|---|---|---|")
        for mode, times in seconds.items():
            best, median = min(times), statistics.median(times)
            print(f"| {mode} | {size / best / 1e6:.0f} | {size / median / 1e6:.0f} | {best:.2f} |")
    finally:
        for proc in procs:
            stop(proc)
        store.close()


if __name__ == "__main__":
    main()
