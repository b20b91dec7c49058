"""Call a service without its Python Protocol: the schema-driven call API (what ``vgi-rpc call`` uses).

Everything comes from what the server's ``vgi_rpc.Reflection.v1`` tells: each method's kind, its
parameter and result Arrow schemas and its stream header schema. Parameters are given as a dict
of Python values and converted with ``pa.array([value], type=field.type)`` per the described
field, so a worker whose Protocol uses types this package never declared can still be called::

    with dynamic_connect(cmd=["python", "worker.py"]) as client:
        print(client.describe().methods)
        client.call("add", {"a": 1, "b": 2})          # -> 3
        for batch in client.stream("countdown", {"n": 3}):
            print(batch.to_pylist())
        with client.exchange("accumulate", {}) as session:
            session.send({"value": 1.0})               # -> pa.RecordBatch

Values follow WIRE.md section 3: a top-level dataclass parameter or result travels as a binary
IPC stream (one row). Such a result is decoded to a dict (``decode_blobs=True``, the default);
for such a parameter pass a dict (its schema is inferred from the values, as
``pa.RecordBatch.from_pylist`` does), an ``ArrowSerializableDataclass``, a one-row
``pa.RecordBatch`` or the ready bytes. Strings are accepted for dates, times, timestamps,
durations (``H:MM:SS[.ffffff]``), decimals and binary fields (UTF-8, or ``base64:...``), so
command-line text converts too.

The request is built from the described schema and the same routing metadata as the typed
client (``request_metadata``); replies go through the client state machine (``sort_items``,
``ClientStream``) of :class:`~vgi_rpc.client.RpcConnection`, exactly as for a typed proxy.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import pyarrow as pa

from ._core.codec import request_metadata
from ._core.describe import MethodDescription, ProtocolList, Reflection, ServiceDescription, to_service_description
from ._core.ipc import IpcValidation, encode_stream
from ._core.keys import REFLECTION_PROTOCOL
from ._core.longstream import ByteStream
from ._core.service import MethodSpec, MethodType, RpcMethodInfo, ServiceSpec
from ._core.typemap import Kind, TypeSpec
from .client import Driver, RpcConnection, StreamSession
from .errors import ArgumentError, RpcError
from .log import Message

__all__ = [
    "DynamicClient",
    "DynamicExchange",
    "DynamicStream",
    "decode_blob",
    "dynamic_connect",
    "encode_value",
]

_IPC_CONTINUATION = b"\xff\xff\xff\xff"


# -- values ----------------------------------------------------------------------------------------


def decode_blob(data: bytes) -> dict[str, Any] | None:
    """The row of a one-row IPC stream (a dataclass sent as a blob) as a dict; None if *data* is not one."""
    if len(data) < 8 or not data.startswith(_IPC_CONTINUATION):
        return None
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowException, ValueError, OSError):
        return None
    if table.num_rows != 1:
        return None
    row: dict[str, Any] = table.to_pylist()[0]
    return row


def _blob(value: Any) -> bytes | None:
    """*value* as a dataclass blob when it is one of the accepted forms, else None."""
    if isinstance(value, pa.RecordBatch | pa.Table):
        batch = value if isinstance(value, pa.RecordBatch) else value.combine_chunks().to_batches()[0]
        return bytes(encode_stream(batch.schema, ((batch, None),)).to_pybytes())
    serialize = getattr(value, "serialize_to_bytes", None)
    if callable(serialize):
        return bytes(serialize())
    if isinstance(value, Mapping):
        batch = pa.RecordBatch.from_pylist([dict(value)])
        return bytes(encode_stream(batch.schema, ((batch, None),)).to_pybytes())
    return None


_DURATION = re.compile(r"^(-)?(?:(\d+) days?, )?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d{1,6})?)$")


def _from_text(text: str, t: pa.DataType) -> Any:
    """The Python value a string stands for in a field of type *t* (the string itself if none)."""
    if pa.types.is_timestamp(t):
        return datetime.datetime.fromisoformat(text)
    if pa.types.is_date(t):
        return datetime.date.fromisoformat(text)
    if pa.types.is_time(t):
        return datetime.time.fromisoformat(text)
    if pa.types.is_decimal(t):
        return decimal.Decimal(text)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return base64.b64decode(text[7:], validate=True) if text.startswith("base64:") else text.encode()
    if pa.types.is_duration(t):
        match = _DURATION.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a duration (H:MM:SS[.ffffff] or a number of {t.unit})")
        sign, days, hours, minutes, seconds = match.groups()
        delta = datetime.timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=float(seconds))
        return -delta if sign else delta
    return text


def _prepare_scalar(value: Any, t: pa.DataType) -> Any:
    if isinstance(value, str):
        return _from_text(value, t)
    if isinstance(value, int | float) and not isinstance(value, bool) and pa.types.is_decimal(t):
        return decimal.Decimal(str(value))
    if isinstance(value, float) and pa.types.is_integer(t):  # pyarrow would truncate it silently
        if not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(value)
    return value


def _prepare(value: Any, t: pa.DataType) -> Any:
    """Adapt a JSON-shaped value to what pyarrow takes for *t* (recursively through containers)."""
    if value is None:
        return None
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        if isinstance(value, list | tuple | set | frozenset):
            return [_prepare(v, t.value_type) for v in value]
    elif pa.types.is_map(t):
        pairs = value.items() if isinstance(value, Mapping) else value
        return [(_prepare(k, t.key_type), _prepare(v, t.item_type)) for k, v in pairs]
    elif pa.types.is_struct(t) and isinstance(value, Mapping):
        return {f.name: _prepare(value.get(f.name), f.type) for f in t if f.name in value}
    elif pa.types.is_dictionary(t):
        return _prepare(value, t.value_type)
    return _prepare_scalar(value, t)


def encode_value(value: Any, field: pa.Field) -> pa.Array:
    """The one-element array of *value* for parameter *field* (see the module docstring)."""
    t = field.type
    if value is None:
        if not field.nullable:
            raise ValueError("the parameter is not nullable but got None")
        return pa.nulls(1, type=t)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        blob = _blob(value)
        if blob is not None:
            return pa.array([blob], type=t)
    return pa.array([_prepare(value, t)], type=t)


# -- the synthetic method specs the client state machine runs on -----------------------------------


class _HeaderAsDict:
    """Stands for a header dataclass: the header row as a dict."""

    @staticmethod
    def deserialize_from_batch(batch: pa.RecordBatch, ipc_validation: IpcValidation = IpcValidation.FULL) -> Any:
        return batch.to_pylist()[0]


def _blob_or_value(value: Any) -> Any:
    if isinstance(value, bytes):
        row = decode_blob(value)
        if row is not None:
            return row
    return value


def _method_spec(protocol: str, m: MethodDescription, decode_blobs: bool) -> MethodSpec:
    info = RpcMethodInfo(
        name=m.name,
        params_schema=m.params_schema,
        result_schema=m.result_schema,
        result_type=None,
        method_type=m.method_type,
        has_return=m.has_return,
        doc=None,
        is_exchange=m.is_exchange,
        protocol_name=protocol,
    )
    result: TypeSpec | None = None
    decode: Callable[[Any], Any] | None = None
    unary = m.method_type is MethodType.UNARY
    if unary and m.has_return and len(m.result_schema):
        rf = m.result_schema.field(0)
        result = TypeSpec(Kind.SCALAR, rf.type, rf.nullable)
        if decode_blobs and (pa.types.is_binary(rf.type) or pa.types.is_large_binary(rf.type)):
            decode = _blob_or_value
    header: TypeSpec | None = None
    if m.has_header and m.header_schema is not None:
        header = TypeSpec(Kind.STRUCT, pa.struct(list(m.header_schema)), False, _HeaderAsDict)
    return MethodSpec(info, (), result, None, decode, header)


# -- streams ---------------------------------------------------------------------------------------


class DynamicStream:
    """A producer stream: iterate it for its output batches (``pa.RecordBatch``).

    ``header`` is the stream header as a dict (None when the method declares none). Leaving a
    ``with`` block, breaking out of the loop or :meth:`close` ends the stream cleanly.
    """

    def __init__(self, session: StreamSession) -> None:
        self.session = session

    @property
    def header(self) -> dict[str, Any] | None:
        """The stream header row (None when the method declares no header)."""
        header: dict[str, Any] | None = self.session.header
        return header

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for annotated in self.session:
            yield annotated.batch

    def close(self) -> None:
        """End the stream."""
        self.session.close()

    def cancel(self) -> None:
        """Cancel the stream (the server runs its ``on_cancel``)."""
        self.session.cancel()

    def __enter__(self) -> DynamicStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DynamicExchange:
    """An exchange stream: :meth:`send` one input, get the output batch it produced.

    The reflection protocol does not describe an exchange's input schema. Inputs given as rows
    (a dict for one row, a list of dicts) are converted to *input_schema* when given, else to the
    schema of the first input, else to the schema pyarrow infers for them (the server casts a
    compatible input, e.g. int64 to float64); pass a ``pa.RecordBatch`` to choose the types exactly.
    """

    def __init__(self, session: StreamSession, input_schema: pa.Schema | None = None) -> None:
        self.session = session
        self.input_schema = input_schema

    @property
    def header(self) -> dict[str, Any] | None:
        """The stream header row (None when the method declares no header)."""
        header: dict[str, Any] | None = self.session.header
        return header

    def _batch(self, data: pa.RecordBatch | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        if isinstance(data, pa.RecordBatch):
            return data
        rows = [dict(data)] if isinstance(data, Mapping) else [dict(r) for r in data]
        schema = self.input_schema
        if schema is not None and all(set(r) <= set(schema.names) for r in rows):
            with contextlib.suppress(pa.ArrowException, TypeError, ValueError, OverflowError):
                columns = {f.name: [_prepare(r.get(f.name), f.type) for r in rows] for f in schema}
                return pa.RecordBatch.from_pydict(columns, schema=schema)
        return pa.RecordBatch.from_pylist(rows)

    def send(self, data: pa.RecordBatch | Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        """Send one input batch; return the output batch."""
        batch = self._batch(data)
        out = self.session.exchange(batch).batch
        if self.input_schema is None:
            self.input_schema = batch.schema  # the stream's input schema is fixed by its first input
        return out

    def close(self) -> None:
        """End the stream."""
        self.session.close()

    def cancel(self) -> None:
        """Cancel the stream (the server runs its ``on_cancel``)."""
        self.session.cancel()

    def __enter__(self) -> DynamicExchange:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- the client ------------------------------------------------------------------------------------


class DynamicClient:
    """Calls the methods of the service behind *transport* by name, from its reflection description.

    *transport* is a ByteStream (``SubprocessTransport``, ``PipeTransport``, ...) or a ``Driver``
    (``HttpDriver``). *protocol* picks one of the hosted protocols (default: the first application
    protocol the server lists). The server must host ``vgi_rpc.Reflection.v1`` (``--describe`` /
    ``enable_describe=True``); otherwise the first use raises ``RpcError`` (``protocol_not_supported``).
    The description is fetched once, on first use. The transport is closed by :meth:`close`.
    """

    def __init__(
        self,
        transport: ByteStream | Driver,
        *,
        protocol: str | None = None,
        on_log: Callable[[Message], None] | None = None,
        ipc_validation: IpcValidation = IpcValidation.FULL,
        timeout: float | None = None,
        decode_blobs: bool = True,
    ) -> None:
        self.connection: RpcConnection[Reflection] = RpcConnection(
            Reflection, transport, on_log=on_log, ipc_validation=ipc_validation, timeout=timeout
        )
        self.decode_blobs = decode_blobs
        self._protocol = protocol
        self._listing: ProtocolList | None = None
        self._description: ServiceDescription | None = None
        self._specs: dict[str, MethodSpec] = {}
        self._service: ServiceSpec | None = None

    # -- description ----------------------------------------------------------------------------

    def list_protocols(self) -> ProtocolList:
        """What the server's ``list_protocols`` answers (server id and version, hosted protocols)."""
        if self._listing is None:
            self._listing = self.connection.proxy.list_protocols()
        return self._listing

    def describe(self) -> ServiceDescription:
        """The described service (fetched once)."""
        if self._description is None:
            listing = self.list_protocols()
            name = self._protocol
            if name is None:
                names = [p.protocol for p in listing.protocols if p.protocol != REFLECTION_PROTOCOL]
                if not names:
                    raise RpcError("ProtocolNotSupportedError", "the server lists no application protocol", "")
                name = names[0]
            desc = to_service_description(self.connection.proxy.describe(name), listing.server_id)
            self._description = desc
            self._service = ServiceSpec(object, desc.protocol_name, desc.protocol_version or None, {})
            self._specs = {n: _method_spec(desc.protocol_name, m, self.decode_blobs) for n, m in desc.methods.items()}
        return self._description

    @property
    def server_id(self) -> str:
        """The server's id, as ``list_protocols`` reports it."""
        return self.list_protocols().server_id

    @property
    def server_version(self) -> str:
        """The server's version string, as ``list_protocols`` reports it."""
        return self.list_protocols().server_version

    def method(self, name: str) -> MethodDescription:
        """One described method; ``ArgumentError`` (``"AttributeError"``) naming the others if unknown."""
        methods = self.describe().methods
        m = methods.get(name)
        if m is None:
            known = ", ".join(sorted(methods))
            raise ArgumentError(f"unknown method {name!r}; the service has: {known}", error_type="AttributeError")
        return m

    # -- requests -------------------------------------------------------------------------------

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> bytes:
        """The request IPC stream calling *method* with *params* (refused with ``ArgumentError``)."""
        m = self.method(method)
        given = dict(params or {})
        schema = m.params_schema
        unknown = [k for k in given if k not in schema.names]
        if unknown:
            expected = ", ".join(schema.names) or "none"
            raise ArgumentError(f"{method}() got an unexpected parameter {unknown[0]!r} (parameters: {expected})")
        arrays = []
        for f in schema:
            if f.name not in given and not f.nullable:
                raise ArgumentError(f"{method}() missing required parameter: {f.name!r} ({f.type})")
            try:
                arrays.append(encode_value(given.get(f.name), f))
            except (pa.ArrowException, TypeError, ValueError, OverflowError, KeyError) as exc:
                shown = repr(given.get(f.name))
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                raise ArgumentError(
                    f"{method}() parameter {f.name!r}: {shown} does not convert to {f.type}: {exc}",
                    error_type="ValueError",
                ) from None
        batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
        assert self._service is not None
        md = request_metadata(self._service, self._specs[method])
        return bytes(encode_stream(schema, ((batch, md),)).to_pybytes())

    def _spec(self, method: str, kind: str) -> MethodSpec:
        m = self.method(method)
        actual = "unary" if m.method_type is MethodType.UNARY else _stream_kind(m)
        ok = actual == kind or (kind != "unary" and actual == "stream")
        if not ok:
            raise ArgumentError(f"{method}() is a {actual} method, not {kind}", error_type="TypeError")
        return self._specs[method]

    # -- calls ----------------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call unary *method*; its result as a Python value (``as_py()``; a dataclass blob as a dict)."""
        spec = self._spec(method, "unary")
        return self.connection.call_request(spec, self.request(method, params))

    def open(self, method: str, params: Mapping[str, Any] | None = None) -> StreamSession:
        """Start stream *method*: the raw :class:`~vgi_rpc.client.StreamSession` (``AnnotatedBatch`` out)."""
        spec = self._spec(method, "stream")
        return StreamSession(self.connection, spec, self.request(method, params))

    def stream(self, method: str, params: Mapping[str, Any] | None = None) -> DynamicStream:
        """Start producer stream *method*; iterate the result for its batches."""
        spec = self._spec(method, "producer")
        return DynamicStream(StreamSession(self.connection, spec, self.request(method, params)))

    def exchange(
        self, method: str, params: Mapping[str, Any] | None = None, *, input_schema: pa.Schema | None = None
    ) -> DynamicExchange:
        """Start exchange stream *method*; ``send`` inputs to it (see :class:`DynamicExchange`)."""
        spec = self._spec(method, "exchange")
        return DynamicExchange(StreamSession(self.connection, spec, self.request(method, params)), input_schema)

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the transport (a subprocess worker exits)."""
        self.connection.close()
        close = getattr(self.connection.transport, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> DynamicClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _stream_kind(m: MethodDescription) -> str:
    return {True: "exchange", False: "producer"}.get(m.is_exchange, "stream")  # type: ignore[arg-type]


@contextlib.contextmanager
def dynamic_connect(
    cmd: str | Sequence[str] | None = None,
    url: str | None = None,
    *,
    prefix: str = "/vgi",
    protocol: str | None = None,
    on_log: Callable[[Message], None] | None = None,
    ipc_validation: IpcValidation = IpcValidation.FULL,
    timeout: float | None = None,
    decode_blobs: bool = True,
    stderr: Any = None,
) -> Iterator[DynamicClient]:
    """Yield a :class:`DynamicClient` for a worker command (*cmd*: a list, or a shell-style string) or an HTTP *url*.

    *prefix* is the HTTP route prefix; *stderr* a ``StderrMode`` for the worker (default: inherit).
    HTTP needs the ``http`` extra (httpx).
    """
    if (cmd is None) == (url is None):
        raise ValueError("give exactly one of cmd= and url=")
    transport: ByteStream | Driver
    if cmd is not None:
        from .transports.subprocess import StderrMode, SubprocessTransport

        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        transport = SubprocessTransport(argv, stderr=stderr if stderr is not None else StderrMode.INHERIT)
    else:
        from .http.client import HttpDriver

        assert url is not None
        transport = HttpDriver(url, prefix=prefix, timeout=timeout)
    client = DynamicClient(
        transport,
        protocol=protocol,
        on_log=on_log,
        ipc_validation=ipc_validation,
        timeout=timeout if cmd is not None else None,
        decode_blobs=decode_blobs,
    )
    try:
        yield client
    finally:
        client.close()
