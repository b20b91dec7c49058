"""The access log: one JSON record per call, on the ``vgi_rpc.access`` logger and in a JSON Lines file.

:class:`AccessLog` is a :class:`~vgi_rpc._core.observe.CallObserver`. Attach it to a server and
it writes, for every call it is told about (one per HTTP stream turn), a record in the field set
that ``vgi-rpc-test --access-log`` validates (WIRE.md section 14)::

    log = AccessLog("access.jsonl").attach(server)

Records never carry payload values (no request data, no stream state): parameters are
described by name and Arrow type only. A server with no observer builds no record at all, so
the log costs nothing when it is not attached.

Fields of a record (all at the top level of one JSON object):

* ``timestamp`` (UTC, ``YYYY-MM-DDTHH:MM:SS.mmmZ``, when the call ended), ``level`` (``"INFO"``),
  ``logger`` (``"vgi_rpc.access"``), ``message`` (``"<protocol>.<method> ok|error"``).
* ``server_id``; ``protocol`` and ``protocol_hash`` (SHA-256 of the protocol's wire surface);
  ``method``; ``method_type`` (``"unary"`` or ``"stream"``).
* ``principal``, ``auth_domain`` (``""`` when anonymous), ``authenticated``; ``claims`` when
  the caller is authenticated and the authenticator gave any.
* ``remote_addr`` (``""`` when the transport does not say, as on pipes).
* ``duration_ms`` (wall time of the call, or of this HTTP turn, rounded to 0.01 ms).
* ``status`` (``"ok"`` or ``"error"``), ``error_type`` (exception class name, ``""`` when ok);
  on errors ``error_message`` and, when known, ``error_code`` (the canonical code).
* ``cancelled: true`` when the client cancelled a stream (``status`` stays ``"ok"``).
* ``request_id``; ``stream_id`` (32 hex digits, the same on every record of one stream call).
* ``request_fields`` (``[{"name", "type"}]``) and ``request_rows`` (1, or 0 for a call without
  parameters and for stream continuations).
* ``input_batches``, ``output_batches``, ``input_rows``, ``output_rows``, ``input_bytes``,
  ``output_bytes``: the call's statistics (bytes are logical Arrow buffer sizes).
* ``server_version`` when one was given.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from typing import Any, BinaryIO

from ._core import keys
from ._core.describe import protocol_hash
from ._core.observe import CallRecord
from .server import RpcServer

__all__ = ["ACCESS_LOGGER", "AccessLog"]

ACCESS_LOGGER = logging.getLogger("vgi_rpc.access")
"""The logger every :class:`AccessLog` reports on (one INFO record per call)."""

ERROR_CODES = keys.ERROR_CODES  # the canonical codes an ``error_code`` field may hold (defined once, in keys)

# LogRecord attributes a field may not overwrite when passed as ``extra``
_RESERVED = frozenset({"timestamp", "level", "logger", "message"})


class AccessLog:
    """Writes one access-log record per call: to a JSON Lines file and on ``vgi_rpc.access``.

    Appends are whole lines under a lock, safe from many threads (an HTTP server's). Use
    :meth:`attach` for a server that exists, or pass the log in ``RpcServer(observers=[...])``
    and then call :meth:`bind` with the server, which gives the log the protocol hashes.

    Args:
        path: Append records to this file (created if missing; ``{pid}`` in the name is replaced
            by the process id, so that processes never share a file). ``None``: log only.
        server_version: Written as ``server_version`` in every record (omitted when empty).

    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, server_version: str = "") -> None:
        self.path = None if path is None else os.fspath(path).replace("{pid}", str(os.getpid()))
        self.server_version = server_version
        self._hashes: dict[str, str] = {}
        self._primary = ""
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        if self.path is not None:
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed by close()

    def bind(self, server: RpcServer) -> AccessLog:
        """Learn the protocols *server* hosts (their hashes; its main protocol for unrouted requests)."""
        self._hashes = {name: protocol_hash(hosted.spec) for name, hosted in server.dispatcher.hosted.items()}
        self._primary = server.protocol_name
        return self

    def attach(self, server: RpcServer) -> AccessLog:
        """Bind to *server* and observe its calls; returns this log."""
        self.bind(server)
        server.add_observer(self)
        return self

    def close(self) -> None:
        """Close the file (records after this are only logged)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> AccessLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- CallObserver -------------------------------------------------------------------------

    def enabled(self) -> bool:
        """Records are wanted while there is a file or the ``vgi_rpc.access`` logger is on."""
        return self._file is not None or ACCESS_LOGGER.isEnabledFor(logging.INFO)

    def on_start(self, record: CallRecord) -> None:
        """Nothing to do when a call starts: the record is written when it ends."""

    def on_end(self, record: CallRecord) -> None:
        """Write the record of a call that ended (nothing is built when there is no file and the logger is off)."""
        logged = ACCESS_LOGGER.isEnabledFor(logging.INFO)
        if self._file is None and not logged:
            return
        fields = self.fields(record)
        if self._file is not None:
            line = (json.dumps(fields, default=str, ensure_ascii=False) + "\n").encode()
            with self._lock:
                if self._file is not None:
                    self._file.write(line)
        if logged:
            extra = {k: v for k, v in fields.items() if k not in _RESERVED}
            ACCESS_LOGGER.info("%s", fields["message"], extra=extra)

    # -- the record ---------------------------------------------------------------------------

    def fields(self, record: CallRecord) -> dict[str, Any]:
        """The JSON object written for *record*."""
        protocol = record.protocol if record.protocol in self._hashes else (self._primary or record.protocol)
        method = record.method or "<none>"
        method_type = record.method_type or "unary"  # a request that reached no method is one request
        ok = record.status == "ok"
        auth = record.auth
        out: dict[str, Any] = {
            "timestamp": _timestamp(time.time()),
            "level": "INFO",
            "logger": ACCESS_LOGGER.name,
            "message": f"{protocol or '<none>'}.{method} {'ok' if ok else 'error'}",
            "server_id": record.server_id,
            "protocol": protocol or "<none>",
            "protocol_hash": self._hashes.get(protocol, ""),
            "method": method,
            "method_type": method_type,
            "principal": auth.principal or "",
            "auth_domain": auth.domain or "",
            "authenticated": auth.authenticated,
            "remote_addr": record.transport_metadata.get("remote_addr", ""),
            "duration_ms": round(max(record.duration_ms, 0.0), 2),
            "status": "ok" if ok else "error",
            "error_type": "" if ok else (record.error_type or "Error"),
        }
        if not ok:
            out["error_message"] = record.error_message or record.error_type or "error"
            if record.error_code in ERROR_CODES:
                out["error_code"] = record.error_code
        if record.cancelled:
            out["cancelled"] = True
        if self.server_version:
            out["server_version"] = self.server_version
        if record.request_id:
            out["request_id"] = record.request_id
        if method_type == "stream":
            out["stream_id"] = record.stream_id or _stream_id(record.request_id)
        if auth.authenticated and auth.claims:
            out["claims"] = dict(auth.claims)
        out["request_fields"] = [{"name": name, "type": type_} for name, type_ in record.request_fields]
        out["request_rows"] = record.request_rows
        out.update(dataclasses.asdict(record.stats))
        return out


def _timestamp(now: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-04-26T15:30:45.123Z``."""
    seconds = int(now)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((now - seconds) * 1000):03d}Z"


def _stream_id(request_id: str) -> str:
    """32 hex digits naming one stream call; a stream keeps its request id across HTTP turns."""
    if not request_id:
        return uuid.uuid4().hex
    import hashlib  # here: only an access log that is written hashes

    return hashlib.blake2b(request_id.encode(), digest_size=16).hexdigest()
