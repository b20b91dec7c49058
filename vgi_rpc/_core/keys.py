"""Every ``vgi_rpc.*`` metadata key and protocol constant, and nowhere else.

Keys are bytes because pyarrow hands custom metadata back as ``dict[bytes, bytes]``.
"""

from __future__ import annotations

from typing import Final

REQUEST_VERSION: Final = "1"
REQUEST_VERSION_B: Final = b"1"

# request routing
METHOD: Final = b"vgi_rpc.method"
REQUEST_VERSION_KEY: Final = b"vgi_rpc.request_version"
PROTOCOL: Final = b"vgi_rpc.protocol"
PROTOCOL_VERSION: Final = b"vgi_rpc.protocol_version"
REQUEST_ID: Final = b"vgi_rpc.request_id"
SERVER_ID: Final = b"vgi_rpc.server_id"

# logs and errors
LOG_LEVEL: Final = b"vgi_rpc.log_level"
LOG_MESSAGE: Final = b"vgi_rpc.log_message"
LOG_EXTRA: Final = b"vgi_rpc.log_extra"
ERROR_CODE: Final = b"vgi_rpc.error_code"
ERROR_KIND: Final = b"vgi_rpc.error_kind"
ERROR_DETAILS: Final = b"vgi_rpc.error_details"

# pointers and tokens
LOCATION: Final = b"vgi_rpc.location"  # an external pointer: the URL of the object
LOCATION_SHA256: Final = b"vgi_rpc.location.sha256"  # hex SHA-256 of the uncompressed IPC bytes
LOCATION_FETCH_MS: Final = b"vgi_rpc.location.fetch_ms"  # added by the reader: fetch time
LOCATION_SOURCE: Final = b"vgi_rpc.location.source"  # added by the reader: the URL, without its query
SHM_OFFSET: Final = b"vgi_rpc.shm_offset"
SHM_LENGTH: Final = b"vgi_rpc.shm_length"
SHM_SOURCE: Final = b"vgi_rpc.shm_source"  # added by the reader of a pointer: the segment it came from
SHM_SEGMENT_NAME: Final = b"vgi_rpc.shm_segment_name"  # a client's segment, advertised on its requests
SHM_SEGMENT_SIZE: Final = b"vgi_rpc.shm_segment_size"
STREAM_STATE: Final = b"vgi_rpc.stream_state#b64"
CALL_STATE: Final = b"vgi_rpc.call_state#b64"

# W3C trace context, carried in request metadata (and as HTTP headers)
TRACEPARENT: Final = b"traceparent"
TRACESTATE: Final = b"tracestate"

# streams
CANCEL: Final = b"vgi_rpc.cancel"
# ours only, never sent by 0.52.2: a stream request offering ticks ahead of the output, and the
# producer's output schema accepting the offer (docs/wire.md, "Ticks ahead")
TICK_AHEAD: Final = b"vgi_rpc.tick_ahead"

# capabilities (the __transport_options__ reply)
TRANSPORT_SHM: Final = b"vgi_rpc.transport.shm"

# reserved names
FRAMEWORK_PREFIX: Final = "vgi_rpc."
FRAMEWORK_PREFIX_B: Final = b"vgi_rpc."
PROTOCOL_HASH_PREFIX: Final = b"vgi_rpc.protocol_hash.v1|"
DESCRIBE_METHOD: Final = "__describe__"
TRANSPORT_OPTIONS_METHOD: Final = "__transport_options__"
REFLECTION_PROTOCOL: Final = "vgi_rpc.Reflection.v1"

ERROR_DETAILS_MAX_BYTES: Final = 4096
TRACEBACK_MAX_CHARS: Final = 16_000
TRACEBACK_TRUNCATED_SUFFIX: Final = "\n… <traceback truncated>"

# gRPC status code names carried in vgi_rpc.error_code
ERROR_CODES: Final = frozenset(
    {
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
