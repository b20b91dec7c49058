"""One shared-memory benchmark run (run under either library): bulk download or upload, over shm or the pipe.

    python _shm_client.py <shm|pipe|pool-shm> <download|upload> <batches> <worker command as JSON>

Prints JSON: MB/s of the timed run (after one warm-up run).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyarrow as pa
from service import Bench, bulk_batch, download, upload

from vgi_rpc import RpcConnection, ShmPipeTransport, SubprocessTransport, WorkerPool
from vgi_rpc.shm import ShmSegment

ROWS = 262_144  # 4 MiB per batch (int64 + float64)


def run(proxy: Bench, workload: str, batches: int, batch: pa.RecordBatch) -> int:
    if workload == "download":
        return download(proxy, batches, ROWS)
    return upload(proxy, batch, batches)


def main() -> None:
    mode, workload, batches, worker = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    batch = bulk_batch(ROWS)
    if mode == "pool-shm":  # a WorkerPool borrow with its own segment
        pool = WorkerPool(max_idle=1, shm_size=64 << 20)
        try:
            with pool.connect(Bench, worker) as proxy:
                run(proxy, workload, 4, batch)
                start = time.perf_counter()
                moved = run(proxy, workload, batches, batch)
                seconds = time.perf_counter() - start
        finally:
            pool.close()
        print(json.dumps({"impl": __import__("vgi_rpc").__file__, "mb_s": moved / seconds / 1e6}))
        return
    pipe = SubprocessTransport(worker)
    segment = ShmSegment.create(size=64 << 20) if mode == "shm" else None
    transport = ShmPipeTransport(pipe, segment) if segment is not None else pipe
    try:
        with RpcConnection(Bench, transport) as proxy:
            run(proxy, workload, 4, batch)
            start = time.perf_counter()
            moved = run(proxy, workload, batches, batch)
            seconds = time.perf_counter() - start
    finally:
        pipe.close()
        if segment is not None:
            segment.close()
            segment.unlink()
    print(json.dumps({"impl": __import__("vgi_rpc").__file__, "mb_s": moved / seconds / 1e6}))


if __name__ == "__main__":
    main()
