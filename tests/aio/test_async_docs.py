"""The async quick starts of README.md and docs/async.md run as they are written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _first_block_after(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {heading!r} in {path.name}"
    return match.group(1)


@pytest.mark.parametrize(("doc", "heading"), [("README.md", "### Async"), ("docs/async.md", "## Quick start")])
def test_the_async_quick_start_runs(doc: str, heading: str, tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_first_block_after(ROOT / doc, heading))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize(("doc", "heading"), [("README.md", "### Async"), ("docs/async.md", "## Quick start")])
def test_the_async_quick_start_type_checks(doc: str, heading: str, tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(_first_block_after(ROOT / doc, heading))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:]
