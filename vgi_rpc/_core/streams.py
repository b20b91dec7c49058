"""Stream results and stream states: what a stream method returns and what drives it.

A method annotated ``-> Stream[S]`` (or ``Stream[S, H]`` with a header dataclass ``H``) returns a
:class:`Stream`. An empty ``input_schema`` makes it a producer (the client sends ticks), any other
schema an exchange (one output batch per input batch).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

import pyarrow as pa

if sys.version_info >= (3, 13):  # TypeVar defaults (PEP 696); typing_extensions costs ~3 ms to import
    from typing import TypeVar
else:
    from typing_extensions import TypeVar

from ..log import Level, Message
from .dataclass import ArrowSerializableDataclass
from .ipc import EMPTY_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType
    from typing import Self

    from .context import CallContext

__all__ = [
    "AnnotatedBatch",
    "ExchangeState",
    "OutputCollector",
    "ProducerState",
    "Stream",
    "StreamState",
]


class AnnotatedBatch:
    """A record batch with its per-batch custom metadata."""

    __slots__ = ("batch", "custom_metadata")

    def __init__(self, batch: pa.RecordBatch, custom_metadata: pa.KeyValueMetadata | None = None) -> None:
        self.batch = batch
        self.custom_metadata = custom_metadata

    @classmethod
    def from_pydict(cls, data: dict[str, Any], schema: pa.Schema | None = None) -> AnnotatedBatch:
        """Build from a column dict (``{"value": [1.0, 2.0]}``)."""
        return cls(pa.RecordBatch.from_pydict(data, schema=schema))

    def __repr__(self) -> str:
        names = self.batch.schema.names
        return f"AnnotatedBatch({self.batch.num_rows} rows, schema={names}, metadata={self.custom_metadata})"


def _md_bytes(metadata: Mapping[str, str] | Mapping[bytes, bytes] | None) -> dict[bytes, bytes] | None:
    if not metadata:
        return None
    return {
        (k.encode() if isinstance(k, str) else k): (v.encode() if isinstance(v, str) else v)
        for k, v in metadata.items()
    }


class OutputCollector:
    """Collects what one ``produce``/``exchange`` call emits: logs and data batches, in order."""

    def __init__(self, output_schema: pa.Schema, *, producer_mode: bool = True) -> None:
        self._output_schema = output_schema
        self._producer_mode = producer_mode
        self._items: list[Message | tuple[pa.RecordBatch, dict[bytes, bytes] | None]] = []
        self._data_count = 0
        self._finished = False

    @property
    def output_schema(self) -> pa.Schema:
        """The schema every emitted batch must have."""
        return self._output_schema

    @property
    def finished(self) -> bool:
        """True once ``finish()`` was called."""
        return self._finished

    @property
    def items(self) -> list[Message | tuple[pa.RecordBatch, dict[bytes, bytes] | None]]:
        """Logs and (batch, metadata) pairs in emission order."""
        return self._items

    @property
    def data_count(self) -> int:
        """How many data batches were emitted."""
        return self._data_count

    def emit(self, batch: pa.RecordBatch, metadata: Mapping[str, str] | None = None) -> None:
        """Emit one data batch on the output schema."""
        if not batch.schema.equals(self._output_schema):
            if batch.schema.names == self._output_schema.names:
                try:
                    batch = batch.cast(self._output_schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise TypeError(f"emitted batch does not match the output schema: {exc}") from None
            else:
                raise TypeError(
                    f"emitted batch schema {batch.schema.names} does not match the output schema "
                    f"{self._output_schema.names}"
                )
        if self._data_count:
            raise RuntimeError("a stream step may emit only one data batch")
        self._data_count += 1
        self._items.append((batch, _md_bytes(metadata)))

    def emit_pydict(self, data: dict[str, Any], metadata: Mapping[str, str] | None = None) -> None:
        """Emit one data batch built from a column dict."""
        self.emit(pa.RecordBatch.from_pydict(data, schema=self._output_schema), metadata)

    def emit_arrays(self, arrays: list[pa.Array], metadata: Mapping[str, str] | None = None) -> None:
        """Emit one data batch built from arrays in output-schema order."""
        self.emit(pa.RecordBatch.from_arrays(arrays, schema=self._output_schema), metadata)

    def client_log(self, level: Level, message: str, **extra: Any) -> None:
        """Send a log record to the client, ordered with the data batches."""
        self._items.append(Message(level, message, **extra))

    def finish(self) -> None:
        """End a producer stream (after this step's batch, if any)."""
        if not self._producer_mode:
            raise RuntimeError("finish() ends producer streams; an exchange ends when the client closes it")
        self._finished = True


class StreamState(ArrowSerializableDataclass):
    """Base of stream states: ``process`` is called once per input batch (or producer tick)."""

    def process(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        """Handle one input batch (a zero-row tick for producers)."""
        raise NotImplementedError

    def on_cancel(self, ctx: CallContext) -> None:
        """Called once when the client cancels the stream."""


class ProducerState(StreamState):
    """A producer: ``produce`` emits the next batch, or calls ``out.finish()``."""

    def produce(self, out: OutputCollector, ctx: CallContext) -> None:
        """Emit the next batch or finish."""
        raise NotImplementedError

    def process(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        """Producers ignore the tick and produce."""
        self.produce(out, ctx)


class ExchangeState(StreamState):
    """An exchange: ``exchange`` turns each input batch into exactly one output batch."""

    def exchange(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        """Handle one input batch."""
        raise NotImplementedError

    def process(self, input: AnnotatedBatch, out: OutputCollector, ctx: CallContext) -> None:
        """Exchanges hand the input to ``exchange``."""
        self.exchange(input, out, ctx)


S = TypeVar("S", bound=StreamState)
H = TypeVar("H", default=None)


@dataclass
class Stream(Generic[S, H]):
    """What a stream method returns: the output schema, the state and (for exchanges) the input schema.

    On the client, the typed proxy's stream methods are annotated with the Protocol's
    ``Stream[S, H]`` and return a ``StreamSession``: for type checkers, ``Stream`` also carries the
    session's API (iteration, ``with``, ``exchange``, ``tick``, ``header`` typed as ``H``, ...).
    """

    output_schema: pa.Schema
    state: S
    input_schema: pa.Schema = EMPTY_SCHEMA
    # Typed H, not H | None: ``Stream[S]`` gives None (the default), ``Stream[S, Header]`` Header.
    header: H = None  # type: ignore[assignment]

    @property
    def is_exchange(self) -> bool:
        """True for an exchange stream (a non-empty input schema)."""
        return len(self.input_schema) > 0

    if TYPE_CHECKING:  # the client-side session (vgi_rpc.client.StreamSession), for type checkers only

        @property
        def finished(self) -> bool:
            """True once the stream has ended (finished, closed, cancelled or failed)."""
            ...

        @property
        def typed_header(self) -> H:
            """The stream header dataclass (None when the method declares none)."""
            ...

        def tick(self, metadata: Mapping[str, str] | Mapping[bytes, bytes] | None = None) -> AnnotatedBatch | None:
            """Ask a producer for its next batch; None when it has finished."""
            ...

        def __iter__(self) -> Iterator[AnnotatedBatch]: ...

        def exchange(self, batch: AnnotatedBatch | pa.RecordBatch) -> AnnotatedBatch:
            """Send one input batch and return the output batch it produced."""
            ...

        def close(self) -> None:
            """End the stream: close the input, then read the output to its end."""
            ...

        def cancel(self) -> None:
            """Cancel the stream: the server calls the state's ``on_cancel`` and closes the output."""
            ...

        def __enter__(self) -> Self: ...

        def __exit__(
            self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
        ) -> None: ...
