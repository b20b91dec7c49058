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


def test_a_child_forked_after_the_server_module_draws_other_ids_than_a_seeded_parent() -> None:
    import vgi_rpc.server  # noqa: F401 - seeds the ids and registers the reseed after fork

    parent_first = new_request_id()  # seeded before the fork: the child must not inherit the prefix
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16 and child[:8] != parent_first[:8]
