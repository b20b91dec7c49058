"""The environment the suite runs in (the ``.venv`` of ``scripts/_venv.sh``) is visible to mypy.

A user's script outside the checkout, checked with ``python -m mypy --strict`` from its own
directory, must find ``vgi_rpc`` (no "Cannot find implementation or library stub") and get the typed
proxy: a wrong argument type is reported with the Protocol's types, not swallowed by ``Any``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

USER_SCRIPT = """\
from dataclasses import dataclass
from typing import Protocol, assert_type

from vgi_rpc import AnnotatedBatch, CallContext, OutputCollector, ProducerState, Stream, StreamState, serve_pipe


class Countdown(Protocol):
    def label(self, n: int) -> str: ...
    def countdown(self, n: int) -> Stream[StreamState]: ...


@dataclass
class CountdownState(ProducerState):
    n: int

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        out.finish()


class CountdownImpl:
    def label(self, n: int) -> str:
        return str(n)

    def countdown(self, n: int) -> Stream[CountdownState]:
        raise NotImplementedError


with serve_pipe(Countdown, CountdownImpl()) as proxy:
    assert_type(proxy.label(n=1), str)
    for batch in proxy.countdown(n=3):
        assert_type(batch, AnnotatedBatch)
    proxy.countdown(n="3")  # the deliberate error
"""


def test_user_script_outside_the_checkout_is_type_checked(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file=", "--no-error-summary", script.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout + proc.stderr
    assert "Cannot find implementation or library stub" not in out, out
    assert "No module named mypy" not in out, out
    line = next(i for i, text in enumerate(USER_SCRIPT.splitlines(), 1) if "the deliberate error" in text)
    expected = (
        f'user_script.py:{line}: error: Argument "n" to "countdown" of "Countdown" has incompatible type "str"; '
        'expected "int"  [arg-type]'
    )
    assert out.splitlines() == [expected], out
    assert proc.returncode == 1
