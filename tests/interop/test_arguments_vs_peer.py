"""Enum arguments across implementations: by member, name or value, and an unknown member.

(a) Our client against the reference worker: we send the member's NAME whatever we were given,
    which 0.52.2's server takes; an unknown member is refused by us before anything is sent.
(b) The reference client against our worker and against its own: 0.52.2's client sends a value
    (``"red"``) as the raw string, which both servers take; an unknown one gets the same
    ``KeyError`` from both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import Color, Everything
from vgi_rpc import ArgumentError, connect

pytestmark = pytest.mark.interop
ROOT = Path(__file__).resolve().parents[2]
PEER_WORKER = str(ROOT / "tests" / "workers" / "peer_worker.py")
OUR_WORKER = str(ROOT / "tests" / "workers" / "everything_worker.py")

RunPeer = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def peer_everything(peer_python: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Everything]:
    monkeypatch.setenv("VGI_TEST_SERVICE", "everything")
    with connect(Everything, [str(peer_python), "-I", PEER_WORKER]) as proxy:
        yield proxy


@pytest.mark.parametrize("given", [Color.RED, "RED", "red"], ids=["member", "name", "value"])
def test_our_client_sends_the_name_the_reference_server_takes(peer_everything: Everything, given: Any) -> None:
    assert peer_everything.color_name(c=given) == "Color.RED"
    assert peer_everything.echo_enum(value=given) is Color.RED


def test_our_client_refuses_an_unknown_member_before_sending(peer_everything: Everything) -> None:
    with pytest.raises(ArgumentError) as info:
        peer_everything.color_name(c="purple")  # type: ignore[arg-type]
    assert info.value.error_type == "KeyError"
    assert "color_name() parameter 'c': 'purple' is not a valid Color name or value" in info.value.error_message
    assert info.value.remote_traceback == ""  # ours, not the worker's
    assert peer_everything.color_name(c=Color.GREEN) == "Color.GREEN"  # the connection is untouched


# Run by the reference client (peer's python -I). argv: <root> <worker command...>
PEER_SCRIPT = """
import json, sys
sys.path.append(sys.argv[1])  # after site-packages: the reference vgi_rpc wins
import vgi_rpc
from tests import services as s

results = {"client": vgi_rpc.__file__}
with vgi_rpc.connect(s.Everything, sys.argv[2:]) as proxy:
    for label, value in (("member", s.Color.RED), ("name", "RED"), ("value", "red"), ("unknown", "purple")):
        try:
            results[label] = ["ok", proxy.color_name(c=value)]
        except vgi_rpc.RpcError as err:
            results[label] = ["error", err.error_type, err.error_message]
    results["after"] = proxy.color_name(c=s.Color.BLUE)
print(json.dumps(results))
"""


def _run(run_peer: RunPeer, *worker: str) -> dict[str, Any]:
    proc = run_peer(PEER_SCRIPT, str(ROOT), *worker)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "site-packages" in result["client"]
    return result


def test_the_reference_client_against_our_server_and_its_own(
    run_peer: RunPeer, peer_python: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VGI_TEST_SERVICE", "everything")
    ours = _run(run_peer, sys.executable, OUR_WORKER)
    theirs = _run(run_peer, str(peer_python), "-I", PEER_WORKER)
    for label in ("member", "name", "value"):
        assert ours[label] == theirs[label] == ["ok", "Color.RED"], label
    kind, error_type, message = ours["unknown"]
    assert (kind, error_type) == ("error", theirs["unknown"][1]) == ("error", "KeyError")
    assert "'purple' is not a valid Color name or value" in message
    # 0.52.2's text (the KeyError's repr), with the valid names added before the closing quote
    assert message.startswith(theirs["unknown"][2].rstrip('"'))
    assert ours["after"] == theirs["after"] == "Color.BLUE"
