"""The vgi-rpc CLI end to end, as a user runs it: a subprocess per command against real workers (pipe and HTTP)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.servers import spawn_port_printer, stop

OUR_WORKER = shlex.join([sys.executable, "-m", "vgi_rpc.conformance", "--describe"])


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "vgi_rpc.cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def ref_worker(peer_python: Path) -> str:
    return shlex.join([str(peer_python.parent / "vgi-rpc-conformance"), "--describe"])


# -- describe -------------------------------------------------------------------------------------


def test_describe_json_ours() -> None:
    done = run("--cmd", OUR_WORKER, "--format", "json", "describe")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert list(doc) == [
        "protocol_name",
        "server_id",
        "request_version",
        "describe_version",
        "protocol_hash",
        "protocol_version",
        "methods",
    ]
    assert doc["protocol_name"] == "ConformanceService"
    assert doc["methods"]["add_floats"] == {
        "method_type": "unary",
        "has_return": True,
        "params_schema": "a: double not null\nb: double not null",
        "result_schema": "result: double not null",
    }
    assert doc["methods"]["produce_n"]["method_type"] == "stream"
    assert list(doc["methods"]) == sorted(doc["methods"])


def test_describe_options_after_the_command() -> None:
    done = run("describe", "--cmd", OUR_WORKER, "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["protocol_name"] == "ConformanceService"


def test_describe_table_ours() -> None:
    done = run("--cmd", OUR_WORKER, "--format", "table", "describe")
    assert done.returncode == 0, done.stderr
    assert "ConformanceService 2.0.0" in done.stdout
    assert "protocol_hash: " in done.stdout
    for text in ("add_floats", "unary", "a: double not null", "produce_n", "producer", "exchange_scale", "exchange"):
        assert text in done.stdout


@pytest.mark.interop
def test_describe_json_identical_for_ours_and_the_reference(ref_worker: str, tmp_path: Path) -> None:
    ours = run("--cmd", OUR_WORKER, "--format", "json", "describe")
    theirs = run("--format", "json", "describe", "--cmd", ref_worker, cwd=tmp_path)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    a, b = json.loads(ours.stdout), json.loads(theirs.stdout)
    assert a.pop("server_id") and b.pop("server_id")
    assert a == b
    assert json.dumps(a) == json.dumps(b)  # the same text, key order too


@pytest.mark.interop
def test_describe_json_as_the_reference_cli_prints_it(ref_worker: str, peer_python: Path, tmp_path: Path) -> None:
    ref_cli = str(peer_python.parent / "vgi-rpc")
    theirs = subprocess.run(
        [ref_cli, "--cmd", ref_worker, "--format", "json", "describe"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    ours = run("--cmd", ref_worker, "--format", "json", "describe", cwd=tmp_path)
    assert theirs.returncode == 0 and ours.returncode == 0, theirs.stderr + ours.stderr
    a, b = json.loads(ours.stdout), json.loads(theirs.stdout)
    a.pop("server_id")
    b.pop("server_id")
    assert a == b


@pytest.mark.interop
def test_describe_table_reference(ref_worker: str, tmp_path: Path) -> None:
    done = run("--cmd", ref_worker, "-f", "table", "describe", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ConformanceService" in done.stdout and "exchange_accumulate" in done.stdout


# -- call -----------------------------------------------------------------------------------------


@pytest.fixture(params=["ours", pytest.param("reference", marks=pytest.mark.interop)])
def worker(request: pytest.FixtureRequest) -> str:
    if request.param == "ours":
        return OUR_WORKER
    ref: str = request.getfixturevalue("ref_worker")
    return ref


def test_unary_call(worker: str) -> None:
    done = run("--cmd", worker, "call", "add_floats", "a=1", "b=2.5")
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [{"result": 3.5}]
    done = run("--cmd", worker, "call", "concatenate", "--json", '{"prefix": "a", "suffix": "b"}', "separator=-")
    assert json_lines(done.stdout) == [{"result": "a-b"}]
    done = run("call", "echo_point", 'point={"x": 1, "y": 2}', "--cmd", worker, "--format", "json")
    assert json_lines(done.stdout) == [{"result": {"x": 1.0, "y": 2.0}}]
    done = run("--cmd", worker, "-f", "table", "call", "echo_string", "value=123")
    assert done.returncode == 0 and done.stdout.strip() == "123"


def test_producer_as_table(worker: str) -> None:
    done = run("--cmd", worker, "--format", "table", "call", "produce_with_header", "count=3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("total_expected" in line and "description" in line for line in lines)
    assert any("producing 3 batches" in line for line in lines)
    header = next(i for i, line in enumerate(lines) if "index" in line and "value" in line)
    cells = [line.replace("│", " ").split() for line in lines[header + 1 :]]
    rows = [c for c in cells if len(c) == 2 and c[0].isdigit()]
    assert rows == [["0", "0"], ["1", "10"], ["2", "20"]]


def test_producer_as_json_lines(worker: str) -> None:
    done = run("--cmd", worker, "--format", "json", "call", "produce_with_header", "count=2")
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [
        {"__header__": {"total_expected": 2, "description": "producing 2 batches"}},
        {"index": 0, "value": 0},
        {"index": 1, "value": 10},
    ]


def test_exchange_from_stdin(worker: str) -> None:
    done = run("--cmd", worker, "call", "exchange_accumulate", stdin='{"value": 1.0}\n\n{"value": 2.5}\n')
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [
        {"running_sum": 1.0, "exchange_count": 1},
        {"running_sum": 3.5, "exchange_count": 2},
    ]
    done = run("--cmd", worker, "-f", "table", "call", "exchange_scale", "factor=2", stdin='{"value": 1.5}\n')
    assert done.returncode == 0, done.stderr
    assert "3.0" in done.stdout


def test_unknown_method(worker: str) -> None:
    done = run("--cmd", worker, "call", "no_such_method")
    assert done.returncode == 2
    assert "unknown method 'no_such_method'" in done.stderr
    assert "add_floats" in done.stderr
    assert "Traceback" not in done.stderr
    assert json_lines(done.stdout)[0]["error"]["type"] == "AttributeError"


def test_bad_parameter(worker: str) -> None:
    done = run("--cmd", worker, "call", "echo_int", "value=abc")
    assert done.returncode == 2
    assert "echo_int() parameter 'value': 'abc' does not convert to int64" in done.stderr
    assert "Traceback" not in done.stderr
    done = run("--cmd", worker, "-f", "table", "call", "echo_int", "valu=1")
    assert done.returncode == 2
    assert "has no parameter 'valu' (parameters: value)" in done.stderr
    assert done.stdout == ""


def test_server_error(worker: str) -> None:
    done = run("--cmd", worker, "call", "raise_value_error", "message=boom")
    assert done.returncode == 1
    assert "ValueError" in done.stderr and "boom" in done.stderr
    error = json_lines(done.stdout)[0]["error"]
    assert error["type"] == "ValueError" and "boom" in error["message"] and "Traceback" in error["traceback"]


def test_unreachable_and_usage_errors(tmp_path: Path) -> None:
    done = run("--cmd", str(tmp_path / "no-such-worker"), "describe")
    assert done.returncode == 3 and "cannot reach the service" in done.stderr and "Traceback" not in done.stderr
    done = run("--url", "http://127.0.0.1:9", "describe")
    assert done.returncode == 3 and "cannot reach the service" in done.stderr
    done = run("describe")
    assert done.returncode == 2 and "--cmd" in done.stderr
    done = run("--cmd", shlex.join([sys.executable, "-m", "vgi_rpc.conformance"]), "describe")  # no --describe
    assert done.returncode == 1 and "--describe" in done.stderr


# -- HTTP -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cmd = [sys.executable, "-m", "vgi_rpc.conformance", "--http", "0", "--describe"]
    proc, port = spawn_port_printer(cmd, cwd=tmp_path_factory.mktemp("http"), stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_http_describe_and_call(http_url: str) -> None:
    done = run("--url", http_url, "--format", "json", "describe")
    assert done.returncode == 0, done.stderr
    over_http = json.loads(done.stdout)
    pipe = json.loads(run("--cmd", OUR_WORKER, "--format", "json", "describe").stdout)
    over_http.pop("server_id")
    pipe.pop("server_id")
    assert over_http == pipe
    done = run("--url", http_url, "--prefix", "/vgi", "call", "add_floats", "a=2", "b=0.25")
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [{"result": 2.25}]


def test_http_streams(http_url: str) -> None:
    done = run("call", "produce_n", "count=2", "--url", http_url)
    assert json_lines(done.stdout) == [{"index": 0, "value": 0}, {"index": 1, "value": 10}]
    done = run("--url", http_url, "call", "exchange_accumulate", stdin='{"value": 2.0}\n{"value": 3.0}\n')
    assert [r["running_sum"] for r in json_lines(done.stdout)] == [2.0, 5.0]


# -- pieces ---------------------------------------------------------------------------------------


def test_json_values_and_key_value_parsing() -> None:
    import datetime
    import decimal

    import pyarrow as pa

    from vgi_rpc.cli import jsonable, parse_assignments

    assert jsonable([("a", 1)]) == {"a": 1}
    assert jsonable([(1, "x")]) == [[1, "x"]]
    assert jsonable(b"\x00") == "base64:AA=="
    assert jsonable(datetime.date(2024, 1, 2)) == "2024-01-02"
    assert jsonable(decimal.Decimal("1.50")) == "1.50"
    assert jsonable(datetime.timedelta(seconds=5)) == "0:00:05"
    schema = pa.schema(
        [("s", pa.string()), ("n", pa.int64()), ("b", pa.bool_()), ("l", pa.list_(pa.int64())), ("d", pa.date32())]
    )
    got = parse_assignments(["s=123", "n=7", "b=yes", "l=[1, 2]", "d=2024-01-02"], schema, "m")
    assert got == {"s": "123", "n": 7, "b": True, "l": [1, 2], "d": "2024-01-02"}


def test_progress_spinner_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import vgi_rpc.cli as cli

    buffer = io.StringIO()
    monkeypatch.setattr(cli, "_err", Console(file=buffer, force_terminal=True))
    with cli._progress("produce_n") as update:
        update(3, 30)
    assert "produce_n()" in buffer.getvalue()
