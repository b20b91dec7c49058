"""The reference vgi-rpc 0.52.2 peer: find a Python 3.13, build the peer's own cached venv, run it.

The peer has the same import name as our package, so it never shares a venv with us and always
runs as ``python -I`` (or through its console scripts) with a working directory outside the
checkout, so that our ``vgi_rpc/`` cannot shadow it.

    python -m tests.refpeer --ensure     # build (or verify) the venv, print its python

Under ``CI=true`` a missing interpreter or a failed install is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REF_VERSION = "0.52.2"
REF_REQUIREMENT = f"vgi-rpc[http,cli,conformance,external,s3]=={REF_VERSION}"
ROOT = Path(__file__).resolve().parent.parent


class PeerUnavailable(RuntimeError):
    """The reference peer cannot be set up on this machine."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vgi-rpc-ref"


def find_python313() -> Path:
    """A Python 3.13 interpreter: $VGI_REF_PYTHON, pyenv's 3.13*, or python3.13 on PATH."""
    env = os.environ.get("VGI_REF_PYTHON")
    if env:
        return Path(env)
    roots = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30).stdout.strip())
    roots.append(os.environ.get("PYENV_ROOT", ""))
    roots.append(str(Path.home() / ".pyenv"))
    for root in filter(None, roots):
        found = sorted(glob.glob(os.path.join(root, "versions", "3.13*", "bin", "python")))
        if found:
            return Path(found[-1])
    on_path = shutil.which("python3.13")
    if on_path:
        return Path(on_path)
    raise PeerUnavailable("no Python 3.13 found (set VGI_REF_PYTHON, or install 3.13 with pyenv)")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(venv: Path, python: Path, packages: list[str], marker_text: str) -> Path:
    marker = venv / ".vgi-ready"
    exe = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == marker_text and exe.exists():
        return exe
    with _locked(venv.parent / f"{venv.name}.lock"):
        if marker.exists() and marker.read_text() == marker_text and exe.exists():
            return exe
        shutil.rmtree(venv, ignore_errors=True)
        try:
            subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=300, capture_output=True)
            subprocess.run(
                [str(exe), "-m", "pip", "install", "-q", *packages],
                check=True,
                timeout=900,
                capture_output=True,
                text=True,
            )
        except subprocess.CalledProcessError as exc:
            raise PeerUnavailable(f"cannot build {venv}: {exc.stderr or exc}") from exc
        marker.write_text(marker_text)
    return exe


def ref_venv() -> Path:
    """The reference peer's venv directory ($VGI_REF_VENV or the user cache)."""
    env = os.environ.get("VGI_REF_VENV")
    return Path(env) if env else _cache_dir() / f"venv-{REF_VERSION}"


def ref_python() -> Path:
    """The peer venv's python, building the venv on first use."""
    exe = _build(ref_venv(), find_python313(), [REF_REQUIREMENT], REF_REQUIREMENT)
    check = subprocess.run(
        [str(exe), "-I", "-c", "import importlib.metadata as m; print(m.version('vgi-rpc'))"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(_cache_dir()),
    )
    if check.stdout.strip() != REF_VERSION:
        raise PeerUnavailable(f"the peer venv holds vgi-rpc {check.stdout.strip()!r}: {check.stderr}")
    return exe


def ref_bin(name: str) -> Path:
    """A console script of the peer venv (vgi-rpc-test, vgi-rpc-conformance, ...)."""
    return ref_python().parent / name


def our_venv_python(version: str = "3.13") -> Path:
    """A cached venv of the given Python with this checkout installed (for side-by-side runs)."""
    if version != "3.13":
        raise ValueError("only 3.13 is provided")
    venv = _cache_dir() / "ours-3.13"
    stamp = f"ours:{ROOT}"
    exe = _build(venv, find_python313(), ["-e", str(ROOT)], stamp)
    return exe


def main() -> None:
    if "--ensure" in sys.argv:
        try:
            print(ref_python())
        except PeerUnavailable as exc:
            print(f"reference peer unavailable: {exc}", file=sys.stderr)
            sys.exit(1 if in_ci() else 0)


if __name__ == "__main__":
    main()
