"""The public surface: pinned so that changes to it are deliberate."""

from __future__ import annotations

import importlib

import vgi_rpc

EXPECTED = {
    "REQUEST_VERSION",
    "AnnotatedBatch",
    "ArrowSerializableDataclass",
    "ArrowType",
    "AuthContext",
    "CallContext",
    "CallStatistics",
    "ConnectionClosedError",
    "DynamicClient",
    "ExchangeState",
    "ArgumentError",
    "IPCError",
    "http_connect",
    "http_introspect",
    "make_wsgi_app",
    "ImplementationError",
    "IpcValidation",
    "Level",
    "MalformedStreamError",
    "Message",
    "MethodDescription",
    "MethodType",
    "OutputCollector",
    "PipeTransport",
    "PoolMetrics",
    "ProducerState",
    "ProtocolError",
    "ProtocolVersionError",
    "RpcConnection",
    "RpcError",
    "RpcMethodInfo",
    "RpcServer",
    "RpcTimeoutError",
    "ShmPipeTransport",
    "ServiceDescription",
    "StderrMode",
    "Stream",
    "StreamSession",
    "StreamState",
    "SubprocessTransport",
    "TransportError",
    "VersionError",
    "VgiRpcError",
    "WorkerPool",
    "connect",
    "describe_rpc",
    "dynamic_connect",
    "introspect",
    "make_pipe_pair",
    "rpc_methods",
    "run_server",
    "serve_pipe",
    "Compression",
    "ExternalLocationConfig",
    "ExternalLocationError",
    "ExternalStorage",
    "FetchConfig",
    "GCSStorage",
    "S3Storage",
    "UploadUrl",
    "UploadUrlProvider",
    "https_only_validator",
}


def test_all_is_pinned() -> None:
    assert set(vgi_rpc.__all__) == EXPECTED
    for name in vgi_rpc.__all__:
        assert getattr(vgi_rpc, name) is not None


def test_compatibility_modules_re_export() -> None:
    rpc = importlib.import_module("vgi_rpc.rpc")
    for name in (
        "Stream",
        "StreamState",
        "ProducerState",
        "ExchangeState",
        "OutputCollector",
        "AnnotatedBatch",
        "CallContext",
        "RpcServer",
        "RpcConnection",
        "connect",
        "serve_pipe",
        "RpcError",
    ):
        assert getattr(rpc, name) is getattr(vgi_rpc, name)
    utils = importlib.import_module("vgi_rpc.utils")
    assert utils.ArrowSerializableDataclass is vgi_rpc.ArrowSerializableDataclass
    assert utils.ArrowType is vgi_rpc.ArrowType
    external = importlib.import_module("vgi_rpc.external")
    for name in ("Compression", "ExternalStorage", "ExternalLocationConfig", "FetchConfig", "S3Storage", "GCSStorage"):
        assert getattr(external, name) is getattr(vgi_rpc, name)
    log = importlib.import_module("vgi_rpc.log")
    assert log.Level is vgi_rpc.Level and log.Message is vgi_rpc.Message


def test_errors_share_one_root() -> None:
    for name in ("RpcError", "TransportError", "ProtocolError", "IPCError", "MalformedStreamError", "VersionError"):
        assert issubclass(getattr(vgi_rpc, name), vgi_rpc.VgiRpcError)
    assert issubclass(vgi_rpc.TransportError, vgi_rpc.RpcError)  # 0.52.2 code catches RpcError
    assert vgi_rpc.TransportError("x").error_type == "TransportError"
    assert vgi_rpc.ProtocolError("x").error_type == "ProtocolError"


def test_http_names_load_on_first_use() -> None:
    from vgi_rpc.http import client, server

    assert vgi_rpc.make_wsgi_app is server.make_wsgi_app
    assert vgi_rpc.http_connect is client.http_connect
    assert vgi_rpc.http_introspect is client.http_introspect
