"""The client state machine: build request streams, classify reply batches, raise RpcError.

Pure: callers hand in decoded batches and get back values; the driver moves the bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pyarrow as pa

from ..errors import ProtocolError, RpcError
from ..log import Message
from . import keys
from .fixedrow import FixedRowCodec
from .ipc import EMPTY_SCHEMA, IpcValidation, encode_stream, validate
from .messages import BatchKind, classify, parse_error, parse_log
from .service import MethodSpec, ServiceSpec

__all__ = ["RequestEncoder", "read_unary_reply"]

OnLog = Callable[[Message], None]


def request_metadata(service: ServiceSpec, method: MethodSpec) -> dict[bytes, bytes]:
    """The custom metadata of every request batch for *method* (routing and version keys)."""
    md = {
        keys.METHOD: method.name.encode(),
        keys.REQUEST_VERSION_KEY: keys.REQUEST_VERSION_B,
        keys.PROTOCOL: service.name.encode(),
    }
    if service.version is not None:
        md[keys.PROTOCOL_VERSION] = service.version.encode()
    return md


def fixed_request_codec(service: ServiceSpec, method: MethodSpec) -> FixedRowCodec | None:
    """The template codec of *method*'s request, when its parameters are all int/float/bool."""
    if any(p.encode is not None or p.decode is not None for p in method.params):
        return None
    return FixedRowCodec.build(method.params_schema, request_metadata(service, method))


class RequestEncoder:
    """Builds the request stream of one method; the static parts are computed once."""

    __slots__ = ("_empty_request", "_fixed", "_metadata", "_method", "_names", "reply_codec")

    def __init__(self, service: ServiceSpec, method: MethodSpec) -> None:
        self._method = method
        md = request_metadata(service, method)
        self._metadata = pa.KeyValueMetadata(md)
        self._names = [p.name for p in method.params]
        self._fixed = fixed_request_codec(service, method)
        # a one-value int/float/bool result (or a void one) is read straight from the reply's bytes
        self.reply_codec: FixedRowCodec | None = None
        if method.decode_result is None and not method.is_stream:
            self.reply_codec = FixedRowCodec.build(method.result_schema)
        self._empty_request: bytes | None = None
        if not method.params:
            batch = pa.RecordBatch.from_arrays([], schema=EMPTY_SCHEMA)
            self._empty_request = bytes(encode_stream(EMPTY_SCHEMA, ((batch, self._metadata),)).to_pybytes())

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Map positional and keyword arguments to parameters, filling in defaults."""
        m = self._method
        if len(args) > len(m.params):
            raise TypeError(f"{m.name}() takes {len(m.params)} argument(s) but {len(args)} were given")
        values = dict(zip(self._names, args, strict=False))
        for key, value in kwargs.items():
            if key in values:
                raise TypeError(f"{m.name}() got multiple values for argument {key!r}")
            if key not in m.info.params_schema.names:
                raise TypeError(f"{m.name}() got an unexpected keyword argument {key!r}")
            values[key] = value
        for p in m.params:
            if p.name not in values:
                if not p.has_default:
                    raise TypeError(f"{m.name}() missing required argument: {p.name!r}")
                values[p.name] = p.default
        return values

    def encode(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bytes:
        """The complete request IPC stream for one call."""
        if self._empty_request is not None:
            if args or kwargs:
                self.bind(args, kwargs)  # raises the right TypeError
            return self._empty_request
        values = self.bind(args, kwargs)
        if self._fixed is not None:
            encoded = self._fixed.encode([values[name] for name in self._names])
            if encoded is not None:
                return encoded
        m = self._method
        arrays = []
        for p in m.params:
            value = values[p.name]
            if value is None:
                if not p.spec.nullable:
                    raise TypeError(f"{m.name}(): parameter {p.name!r} is not Optional and cannot be None")
            elif p.encode is not None:
                value = p.encode(value)
            try:
                arrays.append(pa.array([value], type=p.spec.arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
                raise TypeError(f"{m.name}(): parameter {p.name!r}: cannot convert {value!r}: {exc}") from None
        batch = pa.RecordBatch.from_arrays(arrays, schema=m.params_schema)
        return bytes(encode_stream(m.params_schema, ((batch, self._metadata),)).to_pybytes())


def read_unary_reply(
    method: MethodSpec,
    batches: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
    on_log: OnLog | None,
    ipc_validation: IpcValidation,
) -> Any:
    """Consume a unary reply stream: deliver logs, raise the error, or return the decoded value."""
    result = _terminal_batch(method, batches, on_log)
    if method.result is None:
        return None
    if result.num_rows != 1 or result.num_columns < 1:
        raise ProtocolError(f"{method.name}(): expected a one-row result batch, got {result.num_rows} rows")
    validate(result, ipc_validation)
    value = result.column(0)[0].as_py()
    if value is not None and method.decode_result is not None:
        value = method.decode_result(value)
    return value


def _terminal_batch(
    method: MethodSpec,
    batches: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
    on_log: OnLog | None,
) -> pa.RecordBatch:
    """Deliver logs; return the result batch, or raise the error the stream carried."""
    error: RpcError | None = None
    result: pa.RecordBatch | None = None
    for batch, md in batches:
        kind = classify(batch.num_rows, md or {})
        if kind is BatchKind.LOG:
            if on_log is not None:
                on_log(parse_log(md or {}))
        elif kind is BatchKind.ERROR:
            error = error or parse_error(md or {})
        elif kind is BatchKind.DATA:
            if result is None:
                result = batch
        else:
            raise ProtocolError(f"{method.name}(): the reply holds a {kind.value} pointer, which is not supported here")
    if error is not None:
        raise error
    if result is None:
        raise ProtocolError(f"{method.name}(): the reply stream ended without a result batch")
    return result
