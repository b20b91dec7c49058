"""OpenTelemetry for vgi_rpc servers: one SERVER span per call (one per HTTP stream turn).

Only ``opentelemetry-api`` is imported (the ``otel`` extra); spans go wherever the tracer
provider sends them (an SDK, configured by the application)::

    instrument_server(server)                       # the global tracer provider
    instrument_server(server, tracer_provider=tp)   # or a given one

A span is named ``vgi_rpc/<Protocol>/<method>`` and carries:

* ``rpc.system`` (``"vgi_rpc"``), ``rpc.service`` (the protocol), ``rpc.method``;
* ``rpc.vgi_rpc.method_type``, ``rpc.vgi_rpc.server_id``, ``rpc.vgi_rpc.request_id``;
* ``rpc.vgi_rpc.auth.authenticated`` (``"true"``/``"false"``), and the caller's
  ``rpc.vgi_rpc.auth.principal`` / ``rpc.vgi_rpc.auth.domain`` when authenticated;
* when the call ends, the statistics ``rpc.vgi_rpc.input_batches``, ``output_batches``,
  ``input_rows``, ``output_rows``, ``input_bytes``, ``output_bytes``; ``rpc.vgi_rpc.cancelled``
  on a cancelled stream; on failure the span status is ERROR (with the message) and
  ``rpc.vgi_rpc.error_type`` / ``rpc.vgi_rpc.error_code`` say what failed.

W3C trace context: when the request carried a ``traceparent`` (and ``tracestate``), the span
is a child of that remote span; otherwise of the current context. The carrier is read from the
call record by a *carrier* function (by default the record's ``transport_metadata``, filled by
transports that have request headers). During a unary call the span is the current span, so
spans the implementation opens nest under it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._core.observe import CallRecord
from .server import RpcServer

__all__ = ["SpanObserver", "instrument_server", "parent_context", "trace_carrier"]

CarrierGetter = Callable[[CallRecord], Mapping[str, str] | None]
"""Gives the W3C trace-context headers (``traceparent``, ``tracestate``) a call's request carried."""

_PROPAGATOR = TraceContextTextMapPropagator()
_STATS = ("input_batches", "output_batches", "input_rows", "output_rows", "input_bytes", "output_bytes")


def trace_carrier(record: CallRecord) -> Mapping[str, str] | None:
    """The request's trace-context headers: the record's ``transport_metadata`` when it has one."""
    carrier = getattr(record, "transport_metadata", None)
    return carrier if isinstance(carrier, Mapping) else None


def parent_context(carrier: Mapping[str, str] | None) -> Context | None:
    """The context of the remote span a ``traceparent`` names (header names in any case), or None.

    None when there is no carrier, no ``traceparent`` or one that does not parse.
    """
    if not carrier:
        return None
    headers = {str(k).lower(): v for k, v in carrier.items() if isinstance(v, str)}
    if "traceparent" not in headers:
        return None
    ctx = _PROPAGATOR.extract(headers)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


class SpanObserver:
    """A :class:`~vgi_rpc._core.observe.CallObserver` opening one SERVER span per call.

    Args:
        tracer: Where spans are made.
        carrier: Reads a call's trace-context headers from its record (see :func:`trace_carrier`).

    """

    def __init__(self, tracer: Tracer, *, carrier: CarrierGetter = trace_carrier) -> None:
        self.tracer = tracer
        self.carrier = carrier
        self._open: dict[int, tuple[Span, object | None]] = {}  # id(record) -> span, context token
        self._lock = threading.Lock()

    def on_start(self, record: CallRecord) -> None:
        """Open the call's span (a child of the request's ``traceparent``, if any)."""
        auth = record.auth
        attributes: dict[str, Any] = {
            "rpc.system": "vgi_rpc",
            "rpc.service": record.protocol,
            "rpc.method": record.method,
            "rpc.vgi_rpc.method_type": record.method_type or "unary",
            "rpc.vgi_rpc.server_id": record.server_id,
            "rpc.vgi_rpc.request_id": record.request_id,
            "rpc.vgi_rpc.auth.authenticated": "true" if auth.authenticated else "false",
        }
        if auth.authenticated:
            attributes["rpc.vgi_rpc.auth.principal"] = auth.principal or ""
            attributes["rpc.vgi_rpc.auth.domain"] = auth.domain or ""
        span = self.tracer.start_span(
            f"vgi_rpc/{record.protocol}/{record.method}",
            context=parent_context(self.carrier(record)),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        # a unary call ends on the thread it started on: make its span current meanwhile
        token = None if record.method_type == "stream" else otel_context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[id(record)] = (span, token)

    def on_end(self, record: CallRecord) -> None:
        """Record the call's statistics and outcome and end its span."""
        with self._lock:
            opened = self._open.pop(id(record), None)
        if opened is None:
            return
        span, token = opened
        stats = record.stats
        for name in _STATS:
            span.set_attribute(f"rpc.vgi_rpc.{name}", getattr(stats, name))
        if record.cancelled:
            span.set_attribute("rpc.vgi_rpc.cancelled", True)
        if record.status == "error":
            span.set_attribute("rpc.vgi_rpc.error_type", record.error_type)
            if record.error_code:
                span.set_attribute("rpc.vgi_rpc.error_code", record.error_code)
            span.set_status(Status(StatusCode.ERROR, record.error_message or record.error_type))
        span.end()
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]


def instrument_server(
    server: RpcServer, tracer_provider: TracerProvider | None = None, *, carrier: CarrierGetter = trace_carrier
) -> SpanObserver:
    """Trace every call *server* serves from now on; returns the observer (call before serving)."""
    tracer = trace.get_tracer("vgi_rpc", tracer_provider=tracer_provider)
    observer = SpanObserver(tracer, carrier=carrier)
    server.add_observer(observer)
    return observer
