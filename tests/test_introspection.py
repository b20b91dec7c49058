"""Introspection through vgi_rpc.Reflection.v1 over in-process pipes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import Everything, EverythingImpl, StreamService, StreamServiceImpl
from tests.transports.factories import pipe_to
from vgi_rpc import (
    MethodType,
    PipeTransport,
    RpcConnection,
    RpcError,
    RpcServer,
    introspect,
    rpc_methods,
)
from vgi_rpc._core.describe import Reflection


def _serve(server: RpcServer) -> Iterator[PipeTransport]:
    with pipe_to(server) as client:
        yield client


@pytest.fixture
def described() -> Iterator[PipeTransport]:
    yield from _serve(RpcServer(StreamService, StreamServiceImpl(), enable_describe=True))


def test_introspect_matches_the_protocol(described: PipeTransport) -> None:
    desc = introspect(described)
    assert desc.protocol_name == "StreamService"
    infos = rpc_methods(StreamService)
    assert set(desc.methods) == set(infos)
    for name, info in infos.items():
        got = desc.methods[name]
        assert got.params_schema.equals(info.params_schema)
        assert got.method_type is info.method_type
        if info.method_type is MethodType.STREAM:
            assert got.is_exchange is info.is_exchange
    assert desc.methods["count_with_header"].has_header
    assert desc.methods["count_with_header"].header_schema is not None
    assert len(desc.protocol_hash) == 64
    # the connection is still good for ordinary calls
    assert RpcConnection(StreamService, described).proxy.ping() == "pong"


def test_listing_includes_reflection_itself(described: PipeTransport) -> None:
    proxy = RpcConnection(Reflection, described).proxy
    listing = proxy.list_protocols()
    assert [p.protocol for p in listing.protocols] == ["StreamService", "vgi_rpc.Reflection.v1"]
    assert listing.request_version == "1"


def test_describe_of_an_unknown_protocol(described: PipeTransport) -> None:
    with pytest.raises(RpcError) as info:
        introspect(described, protocol="Nope")
    assert info.value.error_kind == "protocol_not_supported"


def test_reflection_is_absent_without_enable_describe() -> None:
    for transport in _serve(RpcServer(Everything, EverythingImpl())):
        with pytest.raises(RpcError) as info:
            introspect(transport)
        assert info.value.error_kind == "protocol_not_supported"
        assert RpcConnection(Everything, transport).proxy.echo_int(value=3) == 3


def test_describe_rpc_adds_defaults_and_docstrings_from_the_protocol() -> None:
    from tests.services import Calculator
    from vgi_rpc import describe_rpc

    text = describe_rpc(StreamService)
    assert "count(n: int64 not null, chatty: bool not null = False, fail_at: int64 not null = -1)" in text
    calc = describe_rpc(Calculator)
    assert "Calculator service." in calc and "Add two numbers." in calc
