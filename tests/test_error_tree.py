"""Every error class is in one tree, catchable as RpcError, and docs/index.md lists each one."""

from __future__ import annotations

from pathlib import Path

import vgi_rpc
from vgi_rpc import errors

DOCS = Path(__file__).resolve().parent.parent / "docs" / "index.md"


def test_every_error_is_a_vgi_rpc_error_and_an_rpc_error_with_an_error_type() -> None:
    assert set(errors.__all__) <= set(vgi_rpc.__all__)
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, vgi_rpc.VgiRpcError), name
        if cls is not vgi_rpc.VgiRpcError:
            assert issubclass(cls, vgi_rpc.RpcError), name


def test_local_errors_carry_0_52_2_error_types() -> None:
    assert vgi_rpc.TransportError("x").error_type == "TransportError"
    assert vgi_rpc.ConnectionClosedError("x").error_type == "TransportError"
    assert vgi_rpc.RpcTimeoutError("x").error_type == "TransportError"
    assert isinstance(vgi_rpc.RpcTimeoutError("x"), TimeoutError)
    assert vgi_rpc.ProtocolError("x").error_type == "ProtocolError"
    assert vgi_rpc.IPCError("x").error_type == "ProtocolError"
    assert vgi_rpc.ArgumentError("x").error_type == "TypeError"
    assert vgi_rpc.ArgumentError("x", error_type="KeyError").error_type == "KeyError"
    assert isinstance(vgi_rpc.ArgumentError("x"), TypeError)
    assert vgi_rpc.ImplementationError("x").error_type == "TypeError"
    for cls in (vgi_rpc.TransportError, vgi_rpc.ProtocolError, vgi_rpc.ArgumentError):
        err = cls("x")
        assert err.error_code == "" and err.remote_traceback == "" and err.error_message == "x"


def test_the_docs_error_section_lists_every_error() -> None:
    text = DOCS.read_text()
    section = text[text.index("## Errors") : text.index("## Logs")]
    for name in errors.__all__:
        if name != "VgiRpcError":
            assert f"`{name}`" in section, name
