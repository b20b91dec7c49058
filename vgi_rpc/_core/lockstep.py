"""The server side of a stream call, as a state machine over decoded batches.

States: OPEN (header sent, waiting for input) -> RUNNING (output stream started) -> DONE.
``step`` takes one input batch and returns what to append to the output stream; ``end`` handles the
client closing its input. The driver writes the returned items and, when ``done``, the EOS marker.
Every transport (pipe lockstep, HTTP turns) drives this same object.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..log import Message
from . import keys
from .context import CallContext
from .ipc import IpcValidation, empty_batch, validate
from .messages import log_metadata
from .streams import AnnotatedBatch, OutputCollector, Stream

__all__ = ["StepResult", "StreamCall", "StreamPhase"]

Items = list[tuple[pa.RecordBatch, dict[bytes, bytes] | None]]


class StreamPhase(enum.Enum):
    """Where a stream call is in its life."""

    OPEN = "open"
    RUNNING = "running"
    DONE = "done"


@dataclass(slots=True)
class StepResult:
    """What one step appends to the output stream; ``done`` means close the output after it."""

    items: Items = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None
    cancelled: bool = False


class StreamCall:
    """One running stream: its state object, output schema and pending init logs."""

    def __init__(
        self,
        stream: Stream[Any, Any],
        ctx: CallContext,
        *,
        server_id: str,
        request_id: str,
        init_logs: list[Message],
        error_items: Any,
        ipc_validation: IpcValidation,
    ) -> None:
        self.stream = stream
        self.state = stream.state
        self.ctx = ctx
        self.server_id = server_id
        self.request_id = request_id
        self.output_schema: pa.Schema = stream.output_schema
        self.input_schema: pa.Schema = stream.input_schema
        self.is_exchange = stream.is_exchange
        self.phase = StreamPhase.OPEN
        self.pending_logs = init_logs
        self._error_items = error_items  # callable(exc, schema) -> Items (from the dispatcher)
        self._log_batch = empty_batch(self.output_schema)
        self._ipc_validation = ipc_validation
        self.cancelled = False
        self.error: BaseException | None = None
        self._out: OutputCollector | None = None
        ctx.emit_client_log = self.emit_log

    def emit_log(self, msg: Message) -> None:
        """Route ``ctx.client_log`` to the running step, or to the init logs before the first step."""
        if self._out is not None:
            self._out.items.append(msg)
        else:
            self.pending_logs.append(msg)

    def _log_item(
        self, msg: Message, request_id: str | None, batch: pa.RecordBatch | None = None
    ) -> tuple[pa.RecordBatch, dict[bytes, bytes]]:
        md = log_metadata(msg, server_id=self.server_id, request_id=request_id)
        return (self._log_batch if batch is None else batch, md)

    def _take_init_logs(self, batch: pa.RecordBatch | None = None) -> Items:
        # init logs carry the request id, as unary logs do; logs of later steps do not
        items: Items = [self._log_item(m, self.request_id, batch) for m in self.pending_logs]
        self.pending_logs.clear()
        return items

    def header_items(self, schema: pa.Schema) -> Items:
        """Init logs for the header stream (when the method declares a header), on its schema."""
        return self._take_init_logs(empty_batch(schema))

    def _coerce_input(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        expected = self.input_schema
        if batch.schema.equals(expected):
            return batch
        if set(batch.schema.names) != set(expected.names) or batch.num_columns != len(expected):
            raise TypeError(
                f"exchange input columns {batch.schema.names} do not match the declared input schema {expected.names}"
            )
        columns = []
        for f in expected:
            col = batch.column(f.name)
            if not col.type.equals(f.type):
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise TypeError(
                        f"exchange input column {f.name!r}: cannot cast {col.type} to {f.type}: {exc}"
                    ) from None
            columns.append(col)
        return pa.RecordBatch.from_arrays(columns, schema=expected)

    def step(self, batch: pa.RecordBatch, metadata: Mapping[bytes, bytes] | None) -> StepResult:
        """Handle one input batch (a tick for producers); returns the output items to send."""
        if self.phase is StreamPhase.DONE:
            raise RuntimeError("stream step after the stream ended")
        self.phase = StreamPhase.RUNNING
        result = StepResult(self._take_init_logs() if self.pending_logs else [])
        user_md: pa.KeyValueMetadata | None = None
        if metadata:
            if keys.CANCEL in metadata:
                return self._cancel(result)
            kept = {k: v for k, v in metadata.items() if not k.startswith(b"vgi_rpc.")}
            user_md = pa.KeyValueMetadata(kept) if kept else None
        out = self._out = OutputCollector(self.output_schema, producer_mode=not self.is_exchange)
        try:
            if self.is_exchange:
                validate(batch, self._ipc_validation)
                batch = self._coerce_input(batch)
            self.state.process(AnnotatedBatch(batch, user_md), out, self.ctx)
        except Exception as exc:
            return self._fail(result, out, exc)
        finally:
            self._out = None
        if out.data_count == 0 and not self.is_exchange and not out.finished:
            return self._fail(result, out, RuntimeError("produce() neither emitted a batch nor called out.finish()"))
        self._append_output(result, out)
        if out.data_count == 0 and self.is_exchange:
            result.items.append((self._log_batch, None))  # an exchange answers every input, if only empty
        if out.finished:
            result.done = True
            self.phase = StreamPhase.DONE
        return result

    def _append_output(self, result: StepResult, out: OutputCollector, logs_only: bool = False) -> None:
        for item in out.items:
            if isinstance(item, Message):
                result.items.append(self._log_item(item, None))
            elif not logs_only:
                result.items.append(item)

    def _cancel(self, result: StepResult) -> StepResult:
        self.cancelled = True
        with contextlib.suppress(Exception):
            self.state.on_cancel(self.ctx)
        self.phase = StreamPhase.DONE
        result.done = result.cancelled = True
        return result

    def _fail(self, result: StepResult, out: OutputCollector, exc: BaseException) -> StepResult:
        """Logs emitted before the failure, then the error batch; the output ends."""
        self._append_output(result, out, logs_only=True)
        result.items.extend(self._error_items(exc, self.output_schema))
        result.done = True
        result.error = self.error = exc
        self.phase = StreamPhase.DONE
        return result

    def end(self) -> StepResult:
        """The client closed its input: flush pending init logs; the output then ends."""
        self.phase = StreamPhase.DONE
        return StepResult(self._take_init_logs(), done=True)
