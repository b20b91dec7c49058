r"""``vgi-rpc``: describe a vgi-rpc service and call its methods from a shell (the ``cli`` extra: typer, rich).

Usage (connection and output options go before the command, as in the published CLI, or after it)::

    vgi-rpc --cmd "python worker.py" describe
    vgi-rpc --url http://localhost:8080 --format json describe
    vgi-rpc --cmd "python worker.py" call add a=1 b=2
    vgi-rpc --cmd "python worker.py" call add --json '{"a": 1, "b": 2}'
    vgi-rpc --cmd "python worker.py" call countdown n=100          # producer: a table of its rows
    printf '{"value": 1.0}\n{"value": 2.0}\n' | vgi-rpc --cmd "python worker.py" call accumulate

It needs no Python import of the service: everything comes from the worker's
``vgi_rpc.Reflection.v1`` (start ours with ``--describe``), through :mod:`vgi_rpc.dynamic`.

``--format json`` output (stable, for scripts; one JSON document per line):

* ``describe``: one object, the same shape 0.52.2's CLI prints::

    {"protocol_name": str, "server_id": str, "request_version": str, "describe_version": str,
     "protocol_hash": str, "protocol_version": str,
     "methods": {name: {"method_type": "unary"|"stream", "has_return": bool,
                        "params_schema": str, "result_schema": str}}}

  (schemas as ``str(pyarrow.Schema)``, "" when empty; methods sorted by name).
* ``call`` of a unary method: ``{"result": value}`` (``null`` for a void method).
* ``call`` of a stream: ``{"__header__": {...}}`` first when the method declares a header, then one
  object per output row, in order. An exchange reads one JSON value per stdin line (an object is
  one input row, an array of objects several), sends it as one input batch and prints the rows of
  the output batch it produced before reading the next line.
* values: numbers, strings, booleans, null, lists and objects as JSON has them; a map as an
  object when its keys are strings (else a list of ``[key, value]`` pairs); a dataclass blob as
  an object; other bytes as ``"base64:<data>"``; dates, times and timestamps as ISO 8601; a
  decimal as a string; a duration as ``str(timedelta)`` (``"0:00:05"``).
* errors: ``{"error": {"type": str, "message": str, "kind": str, "traceback": str}}`` on stdout,
  as well as the message on stderr.

``key=value`` parameters are converted by the described parameter type: text as is for string,
binary (``base64:...`` for raw bytes), temporal and decimal parameters, JSON otherwise (numbers,
``true``/``false``, lists, objects; an object for a dataclass parameter).

Exit codes: 0 success; 1 the service raised an error; 2 a usage error (unknown method, bad
parameter, no or two connections); 3 the worker or URL cannot be reached or the connection broke;
130 interrupted.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

from ._core.describe import MethodDescription, ServiceDescription
from ._core.service import MethodType
from .dynamic import DynamicClient, decode_blob, dynamic_connect
from .errors import ArgumentError, RpcError, TransportError, VgiRpcError
from .log import Message
from .transports.subprocess import StderrMode

__all__ = ["app", "main"]

EXIT_SERVICE_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class Format(enum.StrEnum):
    """Output formats."""

    AUTO = "auto"
    TABLE = "table"
    JSON = "json"


@dataclass
class _Options:
    cmd: str | None = None
    url: str | None = None
    prefix: str | None = None
    protocol: str | None = None
    format: Format | None = None
    timeout: float | None = None
    verbose: bool = False

    def merge(self, other: _Options) -> _Options:
        """These options with *other*'s given values on top (options after the command win)."""
        return _Options(
            cmd=other.cmd if other.cmd is not None else self.cmd,
            url=other.url if other.url is not None else self.url,
            prefix=other.prefix if other.prefix is not None else self.prefix,
            protocol=other.protocol if other.protocol is not None else self.protocol,
            format=other.format if other.format is not None else self.format,
            timeout=other.timeout if other.timeout is not None else self.timeout,
            verbose=self.verbose or other.verbose,
        )


app = typer.Typer(
    name="vgi-rpc",
    help="Describe a vgi-rpc service and call its methods (a worker command or an HTTP URL).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_out = Console(soft_wrap=True, highlight=False)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

CmdOpt = Annotated[
    str | None, typer.Option("--cmd", "-c", help="Worker command (run as a subprocess), e.g. 'python worker.py'.")
]
UrlOpt = Annotated[str | None, typer.Option("--url", "-u", help="HTTP base URL of the service.")]
PrefixOpt = Annotated[str | None, typer.Option("--prefix", "-p", help="HTTP route prefix [default: /vgi].")]
ProtocolOpt = Annotated[
    str | None, typer.Option("--protocol", help="Which hosted protocol (default: the first the server lists).")
]
FormatOpt = Annotated[
    Format | None,
    typer.Option("--format", "-f", help="Output: table, json, or auto (table on a terminal, else json)."),
]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Seconds per call or stream turn.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show server log messages and the worker's stderr on stderr.")
]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        _out.print(f"vgi-rpc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    cmd: CmdOpt = None,
    url: UrlOpt = None,
    prefix: PrefixOpt = None,
    protocol: ProtocolOpt = None,
    format: FormatOpt = None,
    timeout: TimeoutOpt = None,
    verbose: VerboseOpt = False,
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Describe a vgi-rpc service and call its methods (a worker command or an HTTP URL)."""
    ctx.obj = _Options(cmd, url, prefix, protocol, format, timeout, verbose)


# -- errors ---------------------------------------------------------------------------------------


class _Failure(Exception):
    def __init__(self, message: str, code: int, error: RpcError | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.error = error


def _fail(message: str, code: int) -> NoReturn:
    raise _Failure(message, code)


def _run(options: _Options, body: Any) -> None:
    """Run *body* (a function of a DynamicClient) and turn every failure into a message and an exit code."""
    fmt = _resolve_format(options.format)
    try:
        if options.cmd is None and options.url is None:
            _fail("give the service with --cmd COMMAND (a worker) or --url URL (an HTTP server)", EXIT_USAGE)
        if options.cmd is not None and options.url is not None:
            _fail("give only one of --cmd and --url", EXIT_USAGE)
        on_log = _print_log if options.verbose else None
        with dynamic_connect(
            cmd=options.cmd,
            url=options.url,
            prefix=options.prefix or "/vgi",
            protocol=options.protocol,
            on_log=on_log,
            timeout=options.timeout,
            stderr=StderrMode.INHERIT if options.verbose else StderrMode.PIPE,
        ) as client:
            body(client, fmt)
    except KeyboardInterrupt:
        _err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (_Failure, VgiRpcError, OSError) as exc:
        message, code, error = _explain(exc)
        _report(message, code, fmt, error)


def _explain(exc: BaseException) -> tuple[str, int, RpcError | None]:
    """The message, exit code and error object a failure is reported with."""
    if isinstance(exc, _Failure):
        return str(exc), exc.code, exc.error
    if isinstance(exc, ArgumentError):
        return exc.error_message, EXIT_USAGE, exc
    if isinstance(exc, TransportError):
        return f"cannot reach the service: {exc.error_message}", EXIT_UNREACHABLE, exc
    if isinstance(exc, RpcError):
        message = f"{exc.error_type}: {exc.error_message}"
        if exc.error_kind == "protocol_not_supported" and "Reflection" in exc.error_message:
            message += " (is reflection enabled? start the worker with --describe / enable_describe=True)"
        return message, EXIT_SERVICE_ERROR, exc
    if isinstance(exc, OSError):
        return f"cannot reach the service: {exc}", EXIT_UNREACHABLE, None
    return str(exc), EXIT_SERVICE_ERROR, None


def _report(message: str, code: int, fmt: Format, error: RpcError | None) -> NoReturn:
    if fmt is Format.JSON:
        doc = {
            "type": error.error_type if error is not None else "Error",
            "message": error.error_message if error is not None else message,
            "kind": error.error_kind if error is not None else "",
            "traceback": error.remote_traceback if error is not None else "",
        }
        _write_json({"error": doc})
    _err.print(f"[bold red]Error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _print_log(msg: Message) -> None:
    _err.print(f"[dim][server {msg.level.value}][/] {msg.message}", markup=True)


def _resolve_format(fmt: Format | None) -> Format:
    if fmt is None or fmt is Format.AUTO:
        return Format.TABLE if sys.stdout.isatty() else Format.JSON
    return fmt


# -- JSON values ----------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A Python value from Arrow (``as_py()``) as the JSON value the CLI prints (see the module docstring)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        row = decode_blob(value)
        return jsonable(row) if row is not None else "base64:" + base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if items and all(isinstance(i, tuple) and len(i) == 2 for i in items):  # a map
            if all(isinstance(k, str) for k, _ in items):
                return {k: jsonable(v) for k, v in items}
            return [[jsonable(k), jsonable(v)] for k, v in items]
        return [jsonable(v) for v in items]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta | decimal.Decimal):
        return str(value)
    return str(value)


def _write_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


# -- describe -------------------------------------------------------------------------------------


def _schema_text(schema: pa.Schema) -> str:
    return str(schema) if len(schema) else ""


def describe_json(desc: ServiceDescription) -> dict[str, Any]:
    """The ``--format json`` document of ``describe`` (the shape 0.52.2's CLI prints)."""
    return {
        "protocol_name": desc.protocol_name,
        "server_id": desc.server_id,
        "request_version": desc.request_version,
        "describe_version": desc.describe_version,
        "protocol_hash": desc.protocol_hash,
        "protocol_version": desc.protocol_version,
        "methods": {
            name: {
                "method_type": m.method_type.value,
                "has_return": m.has_return,
                "params_schema": _schema_text(m.params_schema),
                "result_schema": _schema_text(m.result_schema) if m.has_return else "",
            }
            for name, m in sorted(desc.methods.items())
        },
    }


def _kind(m: MethodDescription) -> str:
    if m.method_type is MethodType.UNARY:
        return "unary"
    return {True: "exchange", False: "producer"}.get(m.is_exchange, "stream")  # type: ignore[arg-type]


def _fields_text(schema: pa.Schema | None) -> str:
    if schema is None:
        return ""
    return "\n".join(f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema)


def _describe_table(client: DynamicClient, desc: ServiceDescription) -> None:
    title = desc.protocol_name + (f" {desc.protocol_version}" if desc.protocol_version else "")
    _out.print(f"[bold]{title}[/]", markup=True)
    _out.print(f"  server_id: {desc.server_id}")
    if client.server_version:
        _out.print(f"  server_version: {client.server_version}")
    _out.print(f"  request_version: {desc.request_version}  describe_version: {desc.describe_version}")
    _out.print(f"  protocol_hash: {desc.protocol_hash}")
    table = Table(show_lines=True)
    for column in ("method", "kind", "parameters", "returns"):
        table.add_column(column)
    for name, m in sorted(desc.methods.items()):
        returns = _fields_text(m.result_schema) if m.has_return else ""
        if m.has_header:
            returns = ("header:\n" + _fields_text(m.header_schema)).strip()
        table.add_row(name, _kind(m), _fields_text(m.params_schema), returns)
    _out.print(table)


@app.command()
def describe(
    ctx: typer.Context,
    cmd: CmdOpt = None,
    url: UrlOpt = None,
    prefix: PrefixOpt = None,
    protocol: ProtocolOpt = None,
    format: FormatOpt = None,
    timeout: TimeoutOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Describe the service: its methods and their parameter and result schemas."""
    options = _options(ctx).merge(_Options(cmd, url, prefix, protocol, format, timeout, verbose))

    def body(client: DynamicClient, fmt: Format) -> None:
        desc = client.describe()
        if fmt is Format.JSON:
            _write_json(describe_json(desc))
        else:
            _describe_table(client, desc)

    _run(options, body)


def _options(ctx: typer.Context) -> _Options:
    obj = ctx.obj
    return obj if isinstance(obj, _Options) else _Options()


# -- call -----------------------------------------------------------------------------------------


def _text_kept(t: pa.DataType) -> bool:
    """Whether a ``key=value`` text is taken as is (not parsed as JSON) for type *t*."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_temporal(t)
        or pa.types.is_decimal(t)
    )


def parse_assignments(args: list[str], schema: pa.Schema, method: str) -> dict[str, Any]:
    """``key=value`` arguments as a parameter dict, each value read by its described type."""
    params: dict[str, Any] = {}
    for arg in args:
        key, sep, text = arg.partition("=")
        if not sep or not key:
            raise ArgumentError(f"{method}(): {arg!r} is not a key=value parameter")
        if key not in schema.names:
            expected = ", ".join(schema.names) or "none"
            raise ArgumentError(f"{method}() has no parameter {key!r} (parameters: {expected})")
        t = schema.field(key).type
        value: Any = text
        structured = text[:1] in ("{", "[")
        if structured or not _text_kept(t):
            lowered = text.lower()
            if pa.types.is_boolean(t) and lowered in ("true", "false", "yes", "no", "on", "off"):
                value = lowered in ("true", "yes", "on")
            else:
                try:
                    value = json.loads(text)
                except ValueError:
                    value = text  # the conversion reports it against the parameter's type
        params[key] = value
    return params


def _params(client: DynamicClient, method: str, args: list[str], json_params: str | None) -> dict[str, Any]:
    m = client.method(method)
    params: dict[str, Any] = {}
    if json_params is not None:
        try:
            doc = json.loads(json_params)
        except ValueError as exc:
            raise ArgumentError(f"--json is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ArgumentError("--json must be a JSON object of parameters")
        params.update(doc)
    params.update(parse_assignments(args, m.params_schema, method))
    return params


def _print_rows_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    table = Table(title=title)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    _out.print(table)


def _cell(value: Any) -> str:
    shown = jsonable(value)
    return shown if isinstance(shown, str) else json.dumps(shown)


def _print_header(header: dict[str, Any] | None, fmt: Format) -> None:
    if header is None:
        return
    if fmt is Format.JSON:
        _write_json({"__header__": jsonable(header)})
    else:
        _print_rows_table([header], title="header")


def _unary(client: DynamicClient, method: str, params: dict[str, Any], fmt: Format) -> None:
    result = client.call(method, params)
    if fmt is Format.JSON:
        _write_json({"result": jsonable(result)})
    elif isinstance(result, dict):
        _print_rows_table([result])
    elif result is not None:
        _out.print(_cell(result))


def _producer(client: DynamicClient, method: str, params: dict[str, Any], fmt: Format) -> None:
    rows: list[dict[str, Any]] = []
    batches = 0
    with client.stream(method, params) as stream:
        _print_header(stream.header, fmt)
        with _progress(method) as update:
            for batch in stream:
                batches += 1
                if fmt is Format.JSON:
                    for row in batch.to_pylist():
                        _write_json(jsonable(row))
                    update(batches, None)
                else:
                    rows.extend(batch.to_pylist())
                    update(batches, len(rows))
    if fmt is not Format.JSON:
        _print_rows_table(rows)


class _Progress:
    """A spinner on stderr (when it is a terminal) counting a stream's batches and rows."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.status: Any = None

    def __enter__(self) -> Any:
        if _err.is_terminal:
            self.status = _err.status(f"{self.method}(): waiting for the first batch")
            self.status.__enter__()
        return self.update

    def update(self, batches: int, rows: int | None) -> None:
        if self.status is not None:
            what = f"{batches} batch{'es' if batches != 1 else ''}" + (f", {rows} rows" if rows is not None else "")
            self.status.update(f"{self.method}(): {what}")

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.__exit__(None, None, None)


def _progress(method: str) -> _Progress:
    return _Progress(method)


def _input_lines() -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ArgumentError(f"stdin line {number} is not JSON: {exc}") from None
        if isinstance(doc, dict) or (isinstance(doc, list) and all(isinstance(r, dict) for r in doc)):
            yield number, doc
        else:
            raise ArgumentError(f"stdin line {number}: expected an object (one row) or an array of objects")


def _exchange(client: DynamicClient, method: str, params: dict[str, Any], fmt: Format) -> None:
    with client.exchange(method, params) as session:
        _print_header(session.header, fmt)
        for _, doc in _input_lines():
            out = session.send(doc)
            rows = out.to_pylist()
            if fmt is Format.JSON:
                for row in rows:
                    _write_json(jsonable(row))
            else:
                _print_rows_table(rows)


@app.command()
def call(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="The method to call.")],
    args: Annotated[list[str] | None, typer.Argument(help="Parameters as key=value.", show_default=False)] = None,
    json_params: Annotated[
        str | None, typer.Option("--json", "-j", help="Parameters as a JSON object (key=value ones win).")
    ] = None,
    exchange: Annotated[
        bool, typer.Option("--exchange", help="Drive a stream the server calls of unknown kind as an exchange.")
    ] = False,
    cmd: CmdOpt = None,
    url: UrlOpt = None,
    prefix: PrefixOpt = None,
    protocol: ProtocolOpt = None,
    format: FormatOpt = None,
    timeout: TimeoutOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Call METHOD with key=value parameters; a stream prints its rows, an exchange reads JSON lines from stdin."""
    options = _options(ctx).merge(_Options(cmd, url, prefix, protocol, format, timeout, verbose))

    def body(client: DynamicClient, fmt: Format) -> None:
        m = client.method(method)
        params = _params(client, method, list(args or []), json_params)
        kind = _kind(m)
        if kind == "unary":
            _unary(client, method, params, fmt)
        elif kind == "exchange" or (kind == "stream" and exchange):
            _exchange(client, method, params, fmt)
        else:  # a producer (or a stream of unknown kind, without --exchange)
            _producer(client, method, params, fmt)

    _run(options, body)


def main() -> None:
    """The ``vgi-rpc`` console script."""
    app()


if __name__ == "__main__":
    main()
