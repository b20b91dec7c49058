"""The client state machine: build requests and inputs, sort reply batches, raise RpcError.

Pure: callers hand in decoded batches and get back values; the driver moves the bytes.
Every batch the client receives goes through :func:`sort_items`, the one place that tells data,
log, error and token batches apart (and hands pointer batches to the Offload seam). A stream
call is a :class:`ClientStream`: OPEN -> ENDED (the server ended the output: finished, failed or
cancelled) -> CLOSED (the input is closed too). It builds the tick, exchange and cancel inputs,
echoes the server's state tokens on each input (turn-per-request drivers), and turns the
output items of each turn into the batch to hand the user or the error to raise.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from ..errors import ArgumentError, ProtocolError, RpcError
from ..log import Message
from . import keys, wirelog
from .codec import request_codec, request_metadata, result_codec, with_stream_offer
from .ipc import BIG_BYTES, EMPTY_SCHEMA, TICK, IpcValidation, Item, empty_batch, encode_chunks, encode_stream, validate
from .messages import BatchKind, classify, parse_error, parse_log
from .offload import Offload
from .service import MethodSpec, ParamSpec, ServiceSpec
from .streams import AnnotatedBatch
from .typemap import Kind
from .values import one_value_array, short_repr, takes_python_type
from .wholes import first_value

__all__ = [
    "ClientStream",
    "Request",
    "RequestEncoder",
    "is_data",
    "read_unary_reply",
    "request_bytes",
    "request_size",
    "sort_items",
]


OnLog = Callable[[Message], None]


# A request stream as the client hands it to its driver: bytes, or (big arguments) chunks to
# write in order, which hold the caller's buffers rather than copies (``request_bytes`` joins them).
Request = bytes | list[Any]


def request_bytes(request: Request) -> bytes:
    """The request in one piece (for transports that need one body, such as HTTP)."""
    return request if isinstance(request, bytes) else b"".join(request)


def request_size(request: Request) -> int:
    """The request's length in bytes."""
    return len(request) if isinstance(request, bytes) else sum(memoryview(c).nbytes for c in request)


class RequestEncoder:
    """Builds the request stream of one method; the static parts are computed once.

    Arguments that do not fit are refused here, before anything is sent, with an
    :class:`~vgi_rpc.errors.ArgumentError` naming the method and the parameter: binding
    mistakes and a wrong type are ``"TypeError"``, a value of the right type that does not fit
    (an out-of-range integer) is ``"ValueError"``, an unknown enum member ``"KeyError"``.
    Unlike 0.52.2, a ``str`` parameter refuses ``bytes`` (pyarrow would decode them silently).
    """

    __slots__ = ("_empty_request", "_fixed", "_metadata", "_method", "_names", "_params", "reply_codec")

    def __init__(
        self, service: ServiceSpec, method: MethodSpec, extra_metadata: Mapping[bytes, bytes] | None = None
    ) -> None:
        self._method = method
        md = request_metadata(service, method, with_stream_offer(method, extra_metadata))
        self._metadata = pa.KeyValueMetadata(md)
        self._names = [p.name for p in method.params]
        self._fixed = request_codec(service, method, extra_metadata)
        # each parameter with the one Python type it takes when pyarrow would accept others too (str),
        # and for an Enum the one-row array of each member met so far (a handful, built once each)
        self._params: tuple[tuple[ParamSpec, type | None, dict[Any, pa.Array] | None], ...] = tuple(
            (
                p,
                str if p.spec.kind is Kind.SCALAR and p.spec.py_type is str else None,
                {} if p.spec.kind is Kind.ENUM else None,
            )
            for p in method.params
        )
        # a one-value int/float/bool result (or a void one) is read straight from the reply's bytes
        self.reply_codec = result_codec(method)
        self._empty_request: bytes | None = None
        if not method.params:
            batch = pa.RecordBatch.from_arrays([], schema=EMPTY_SCHEMA)
            self._empty_request = bytes(encode_stream(EMPTY_SCHEMA, ((batch, self._metadata),)).to_pybytes())

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Map positional and keyword arguments to parameters, filling in defaults."""
        m = self._method
        if len(args) > len(m.params):
            raise ArgumentError(f"{m.name}() takes {len(m.params)} argument(s) but {len(args)} were given")
        values = dict(zip(self._names, args, strict=False))
        for key, value in kwargs.items():
            if key in values:
                raise ArgumentError(f"{m.name}() got multiple values for argument {key!r}")
            if key not in m.info.params_schema.names:
                raise ArgumentError(f"{m.name}() got an unexpected keyword argument {key!r}")
            values[key] = value
        for p in m.params:
            if p.name not in values:
                if not p.has_default:
                    raise ArgumentError(f"{m.name}() missing required argument: {p.name!r}")
                values[p.name] = p.default
        return values

    def encode(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        extra: Mapping[bytes, bytes] | None = None,
        offload: Offload | None = None,
    ) -> Request:
        """The complete request IPC stream for one call (*extra*: metadata for this call only, e.g. a trace).

        Bytes, or for a request with big arguments the chunks to write in order (see ``Request``).
        *offload* may replace a big parameter batch by a pointer batch (keeping the routing metadata).
        """
        if self._empty_request is not None and not extra:
            if args or kwargs:
                self.bind(args, kwargs)  # raises the right ArgumentError
            return self._empty_request
        values = self.bind(args, kwargs)
        if self._fixed is not None and not extra:
            encoded = self._fixed.encode([values[name] for name in self._names])
            if encoded is not None:
                return encoded
        m = self._method
        arrays = [self._array(p, strict, members, values[p.name]) for p, strict, members in self._params]
        batch = pa.RecordBatch.from_arrays(arrays, schema=m.params_schema)
        md: Mapping[bytes, bytes] | None = self._metadata if not extra else {**extra, **dict(self._metadata)}
        if offload is not None:
            batch, md = offload.offload(batch, dict(md or {}))
        if batch.get_total_buffer_size() >= BIG_BYTES:  # chunks: big column buffers are not copied
            return encode_chunks(m.params_schema, ((batch, md),))
        return bytes(encode_stream(m.params_schema, ((batch, md),)).to_pybytes())

    def _array(self, p: ParamSpec, strict: type | None, members: dict[Any, pa.Array] | None, value: Any) -> pa.Array:
        """The one-row array of parameter *p* holding *value*; ``ArgumentError`` if it does not fit."""
        if members is not None and type(value) is p.spec.py_type:  # an Enum member: built once
            array = members.get(value)
            if array is None:
                array = members[value] = pa.array([p.encode(value)], type=p.spec.arrow_type)  # type: ignore[misc]
            return array
        if value is None:
            if not p.spec.nullable:
                raise ArgumentError(f"{self._method.name}() parameter {p.name!r} is not Optional but got None")
        elif strict is not None and not isinstance(value, strict):
            raise self._refused(p, value, None)
        try:
            wire = value if value is None or p.encode is None else p.encode(value)
            return one_value_array(wire, p.spec.arrow_type)
        except (KeyError, AttributeError, pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise self._refused(p, value, exc) from None

    def _refused(self, p: ParamSpec, value: Any, exc: BaseException | None) -> ArgumentError:
        """The ArgumentError for *value* of parameter *p*, which failed to convert with *exc*."""
        where = f"{self._method.name}() parameter {p.name!r}"
        if isinstance(exc, KeyError):  # an enum member that does not exist (also one inside a container)
            detail = exc.args[0] if exc.args else repr(exc)
            return ArgumentError(f"{where}: {detail}", error_type="KeyError")
        expected = p.spec.python_name()
        got = type(value).__name__
        if not takes_python_type(p.spec, value):
            return ArgumentError(f"{where} expects {expected}, got {got}")
        detail = str(exc) if exc is not None else ""
        # pyarrow says "Could not convert 'x' with type str: tried to convert to int64" for a
        # wrong type inside a container; everything else of the right type is a bad value
        if isinstance(exc, TypeError) or " with type " in detail:
            return ArgumentError(f"{where} expects {expected}, got {got}: {detail}")
        shown = short_repr(value)
        return ArgumentError(f"{where}: {shown} does not fit {p.spec.arrow_type}: {detail}", error_type="ValueError")


def sort_items(
    items: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
    on_log: OnLog | None,
    *,
    what: str,
    tokens: dict[bytes, bytes] | None = None,
    offload: Offload | None = None,
) -> tuple[list[Item], RpcError | None]:
    """Deliver logs, keep state tokens, and return the data batches and the first error, in order.

    Pointer batches go to *offload* (a protocol error without one); what a pointer resolves to
    is sorted in its place. Token sentinels and the tokens on data batches are stored in
    *tokens* when given.
    """
    data: list[Item] = []
    errors: list[RpcError] = []
    if wirelog.on(wirelog.BATCH):
        items = _logged(items)
    for batch, md in items:
        if not md:
            data.append((batch, None))
            continue
        if offload is not None and _resolved_into(offload, batch, md, on_log, what, tokens, data, errors):
            continue
        kind = classify(batch.num_rows, md)
        if kind is BatchKind.DATA:
            _keep_tokens(md, tokens)
            data.append((batch, dict(md)))
        elif kind is BatchKind.LOG:
            if on_log is not None:
                on_log(parse_log(md))
        elif kind is BatchKind.ERROR:
            errors.append(parse_error(md))
        elif kind is BatchKind.TOKEN and tokens is not None:
            _keep_tokens(md, tokens)
        else:
            raise ProtocolError(f"{what}: the reply holds a {kind.value} batch, which is not supported here")
    return data, errors[0] if errors else None


def _resolved_into(
    offload: Offload,
    batch: pa.RecordBatch,
    md: Mapping[bytes, bytes],
    on_log: OnLog | None,
    what: str,
    tokens: dict[bytes, bytes] | None,
    data: list[Item],
    errors: list[RpcError],
) -> bool:
    """Hand a batch to the Offload; when it was a pointer, sort what it stands for in its place (True)."""
    resolved = offload.resolve(batch, md)
    if len(resolved) == 1 and resolved[0][0] is batch:
        return False
    sub, error = sort_items(resolved, on_log, what=what, tokens=tokens)
    data.extend(sub)
    errors.extend([error] if error is not None else [])
    return True


def _logged(
    items: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
) -> Iterator[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]]:
    for batch, md in items:
        kind = classify(batch.num_rows, md).value if md else "data"
        wirelog.BATCH.debug("client <- %s batch: %d rows, %d columns", kind, batch.num_rows, batch.num_columns)
        yield batch, md


def _keep_tokens(md: Mapping[bytes, bytes], tokens: dict[bytes, bytes] | None) -> None:
    if tokens is None or keys.STREAM_STATE not in md:
        return
    tokens[keys.STREAM_STATE] = md[keys.STREAM_STATE]
    if keys.CALL_STATE in md:
        tokens[keys.CALL_STATE] = md[keys.CALL_STATE]


def read_unary_reply(
    method: MethodSpec,
    batches: Iterable[tuple[pa.RecordBatch, Mapping[bytes, bytes] | None]],
    on_log: OnLog | None,
    ipc_validation: IpcValidation,
    offload: Offload | None = None,
) -> Any:
    """Consume a unary reply stream: deliver logs, raise the error, or return the decoded value."""
    data, error = sort_items(batches, on_log, what=f"{method.name}()", offload=offload)
    if error is not None:
        raise error
    if not data:
        raise ProtocolError(f"{method.name}(): the reply stream ended without a result batch")
    if method.result is None:
        return None
    result = data[0][0]
    if result.num_rows != 1 or result.num_columns < 1:
        raise ProtocolError(f"{method.name}(): expected a one-row result batch, got {result.num_rows} rows")
    validate(result, ipc_validation)
    value = first_value(result.column(0))
    if value is not None and method.decode_result is not None:
        value = method.decode_result(value)
    return value


class Phase(enum.Enum):
    """Where a client stream call is."""

    OPEN = "open"
    ENDED = "ended"  # the server ended the output; the input is still to close
    CLOSED = "closed"


_STATE_KEYS = (keys.STREAM_STATE, keys.CALL_STATE)
_PLAIN_TICK: Item = (TICK, None)


class ClientStream:
    """The client side of one stream call, without I/O (see the module docstring)."""

    __slots__ = (
        "_first",
        "_input_schema",
        "_offload",
        "_on_log",
        "_tokens",
        "_validation",
        "cancelled",
        "header",
        "method",
        "phase",
        "turn_per_request",
        "what",
    )

    def __init__(
        self,
        method: MethodSpec,
        *,
        ipc_validation: IpcValidation,
        on_log: OnLog | None,
        offload: Offload | None = None,
        turn_per_request: bool = False,
    ) -> None:
        self.method = method
        self.turn_per_request = turn_per_request
        self.what = f"{method.name}()"
        self.phase = Phase.OPEN
        self.cancelled = False
        self.header: Any = None
        self._validation = ipc_validation
        self._on_log = on_log
        self._offload = offload
        self._tokens: dict[bytes, bytes] = {}
        self._input_schema: pa.Schema | None = None
        self._first: list[Item] | None = None

    @property
    def ended(self) -> bool:
        """True once the server ended the output (or the call was closed)."""
        return self.phase is not Phase.OPEN

    def _sort(self, items: Iterable[Item]) -> tuple[list[Item], RpcError | None]:
        return sort_items(items, self._on_log, what=self.what, tokens=self._tokens, offload=self._offload)

    # -- start --------------------------------------------------------------------------------

    def take_header(self, items: Iterable[Item]) -> Any:
        """The header dataclass from the header stream; raises the error it carried instead."""
        spec = self.method.header_spec
        assert spec is not None
        data, error = self._sort(items)
        if error is not None:
            self.phase = Phase.ENDED
            raise error
        if len(data) != 1 or data[0][0].num_rows != 1:
            self.phase = Phase.ENDED
            raise ProtocolError(f"{self.what}: the header stream held no header")
        self.header = spec.py_type.deserialize_from_batch(data[0][0], ipc_validation=self._validation)
        return self.header

    def take_init(self, items: list[Item]) -> None:
        """Items a turn-per-request driver receives with the call's start.

        Init logs and state tokens; for a producer also its first tick's output (the server runs
        the first tick with the start), kept for :meth:`first_output`.
        """
        if not items and not self.turn_per_request:
            return
        data, error = self._sort(items)
        if error is not None:
            self.phase = Phase.ENDED
            raise error
        if self.turn_per_request and (data or keys.STREAM_STATE not in self._tokens):
            self._first = data
        elif data:
            raise ProtocolError(f"{self.what}: a data batch arrived before any input")

    def first_output(self) -> tuple[bool, AnnotatedBatch | None]:
        """(True, output) when the first tick was already answered with the start, else (False, None)."""
        data = self._first
        if data is None:
            return False, None
        self._first = None
        self._input_schema = EMPTY_SCHEMA  # the tick the server ran at the start
        return True, self._output(data, keys.STREAM_STATE not in self._tokens)

    # -- inputs -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.phase is not Phase.OPEN:
            raise ProtocolError(f"{self.what}: Stream has been closed or cancelled")

    def _with_tokens(self, md: dict[bytes, bytes] | None) -> dict[bytes, bytes] | None:
        if not self._tokens:
            return md
        return {**md, **self._tokens} if md else dict(self._tokens)

    def tick(self, metadata: Mapping[str, str] | Mapping[bytes, bytes] | None) -> Item:
        """A producer tick (with the caller's metadata, if any)."""
        if self.phase is not Phase.OPEN:
            self._check_open()
        if not metadata and not self._tokens and self._input_schema is not None:
            return _PLAIN_TICK  # the common case: the constant tick (see codec.TICK_MESSAGE)
        md = _bytes_metadata(metadata) if metadata else None
        if self._input_schema is None:
            self._input_schema = EMPTY_SCHEMA
        return TICK, self._with_tokens(md)

    def exchange(self, batch: AnnotatedBatch | pa.RecordBatch) -> Item:
        """The input batch of one exchange turn."""
        self._check_open()
        md: dict[bytes, bytes] | None = None
        if isinstance(batch, AnnotatedBatch):
            kv = batch.custom_metadata
            md = dict(kv) if kv is not None else None
            batch = batch.batch
        if self._input_schema is None:
            self._input_schema = batch.schema
        elif not batch.schema.equals(self._input_schema):
            raise ArgumentError(
                f"{self.what}: Input schema mismatch: this stream's input is ({_fields(self._input_schema)}), "
                f"got ({_fields(batch.schema)})"
                + ("; a producer stream takes ticks, not exchange()" if not len(self._input_schema) else "")
            )
        if md and self._offload is not None:
            batch, md = self._offload.offload(batch, md)
        elif self._offload is not None:
            batch, md = self._offload.offload(batch, None)
        return batch, self._with_tokens(md)

    def cancel(self) -> Item:
        """The cancel input: a zero-row batch with ``vgi_rpc.cancel`` (empty schema before any input)."""
        schema = self._input_schema if self._input_schema is not None else EMPTY_SCHEMA
        self.cancelled = True
        return empty_batch(schema), self._with_tokens({keys.CANCEL: b"1"})

    # -- outputs ------------------------------------------------------------------------------

    def take_turn(self, items: list[Item], eos: bool) -> AnnotatedBatch | None:
        """The output of one turn: its data batch, or None when the output ended; raises its error.

        *eos* says the output stream ended (long streams). On a turn-per-request driver the
        output ends with the first turn that brings no new state token.
        """
        if len(items) == 1 and not self.turn_per_request:
            batch, md = items[0]
            if not md:  # the common case: one plain data batch
                validate(batch, self._validation)
                return AnnotatedBatch(batch, None)
        if self.turn_per_request:
            self._tokens.pop(keys.STREAM_STATE, None)
        data, error = self._sort(items)
        if error is not None:
            self.phase = Phase.ENDED
            raise error
        if self.turn_per_request:
            eos = keys.STREAM_STATE not in self._tokens
        return self._output(data, eos)

    def _output(self, data: list[Item], eos: bool) -> AnnotatedBatch | None:
        if len(data) > 1:
            raise ProtocolError(f"{self.what}: {len(data)} data batches answered one input")
        if eos:
            self.phase = Phase.ENDED
        if not data:
            if eos:
                return None
            raise ProtocolError(f"{self.what}: the turn ended without a data batch")
        batch, md = data[0]
        validate(batch, self._validation)
        return AnnotatedBatch(batch, _user_metadata(md))

    def take_rest(self, items: list[Item]) -> None:
        """What was left of the output when the client closed the call (logs)."""
        if items:
            self._sort(items)
        self.phase = Phase.CLOSED


_TURN_ENDERS = frozenset({BatchKind.DATA, BatchKind.EXTERNAL, BatchKind.SHM})


def _fields(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def is_data(batch: pa.RecordBatch, metadata: dict[bytes, bytes] | None) -> bool:
    """Whether an output item ends a turn on a long stream: a data batch, or a pointer standing for one."""
    return not metadata or classify(batch.num_rows, metadata) in _TURN_ENDERS


def _bytes_metadata(metadata: Mapping[str, str] | Mapping[bytes, bytes] | Any) -> dict[bytes, bytes]:
    return {
        (k.encode() if isinstance(k, str) else bytes(k)): (v.encode() if isinstance(v, str) else bytes(v))
        for k, v in metadata.items()
    }


def _user_metadata(md: dict[bytes, bytes] | None) -> pa.KeyValueMetadata | None:
    if not md:
        return None
    kept = {k: v for k, v in md.items() if k not in _STATE_KEYS}
    return pa.KeyValueMetadata(kept) if kept else None
