"""Request ids: unique, 16 hex digits, and a forked child (a gunicorn worker) does not repeat its parent's."""

from __future__ import annotations

import os
import re

from vgi_rpc._core.dispatch import new_request_id


def test_ids_are_sixteen_hex_digits_and_unique() -> None:
    ids = [new_request_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)


def test_a_forked_child_draws_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, " ".join(new_request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    child = set(os.read(read, 1 << 16).decode().split())
    os.close(read)
    os.waitpid(pid, 0)
    parent = {new_request_id() for _ in range(100)}
    assert len(child) == 100
    assert {i[:8] for i in child}.isdisjoint({i[:8] for i in parent})
