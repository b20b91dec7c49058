"""A smoke run of the benchmark suite (``benchmarks/suite.py --quick``), so that it cannot rot.

It checks that the suite runs to the end against ours and the reference, and that its JSON holds a
result with positive numbers for every (workload, transport, placement, side) it claims. It asserts
nothing about timings: they are the benchmark's business, not the unit suite's. Without the
reference peer this fails under CI=true and skips elsewhere (the ``peer_python`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.refpeer import PeerUnavailable, in_ci

ROOT = Path(__file__).resolve().parent.parent

# the suite itself takes well under a minute; building the 3.13 venv of ours the first time does not count
pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def ours_313(peer_python: Path) -> None:
    """The suite's ours-3.13 side needs a 3.13 venv; build it outside the timed run if there is none."""
    from benchmarks.suite import ours_313 as find

    try:
        find()
    except PeerUnavailable as exc:  # pragma: no cover - depends on the machine
        if in_ci():
            pytest.fail(f"no 3.13 venv for ours under CI: {exc}")
        pytest.skip(f"no 3.13 venv for ours: {exc}")


def test_quick_suite_runs_and_reports_every_claimed_entry(ours_313: None, tmp_path: Path) -> None:
    out = tmp_path / "suite.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(out.read_text())
    claimed = {(c["workload"], c["transport"], c["placement"], c["side"]) for c in report["claimed"]}
    results = {(r["workload"], r["transport"], r["placement"], r["side"]): r for r in report["results"]}
    assert set(results) == claimed
    # every workload, transport and side the suite knows is claimed (a quick run selects them all)
    from benchmarks.suite import OURS, TRANSPORTS, WORKLOADS

    assert {w for w, _, _, _ in claimed} == set(WORKLOADS)
    assert {t for _, t, _, _ in claimed} >= set(TRANSPORTS)
    assert {s for _, _, _, s in claimed} >= {"reference", "ours-3.13", OURS}
    for key, entry in results.items():
        assert entry["n"] > 0, key
        for field in ("min", "median", "p99"):
            assert entry[field] > 0, (key, field)
        if entry["side"].startswith("ours"):  # beside the reference, always
            assert entry["ratio_min"] > 0 and entry["ratio_median"] > 0, key
        for who, (growth, peak) in entry["rss_mib"].items():
            assert peak > 0 and growth >= 0, (key, who)
    assert "| workload | transport |" in run.stdout


def test_the_in_process_wsgi_benchmark_runs() -> None:
    """benchmarks/wsgi_inprocess.py (quoted in docs/benchmarks.md) runs and prints its three rows."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "wsgi_inprocess.py"), "--rounds", "1", "--calls", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    rows = [line.split("|")[1:4] for line in run.stdout.splitlines() if line.startswith("| ") and "µs" not in line]
    assert [name.strip() for name, _, _ in rows] == [
        "noop, our client's request",
        "noop, another layout",
        "echo-only app (floor)",
    ]
    assert all(float(low) > 0 and float(mid) >= float(low) for _, low, mid in rows)
