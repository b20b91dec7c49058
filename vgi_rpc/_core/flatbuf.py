"""Reading Arrow's flatbuffer message metadata by absolute offsets (little-endian, standard library only)."""

from __future__ import annotations

import struct
from typing import Any, Final

__all__ = ["DICTIONARY_BATCH", "RECORD_BATCH", "header_type", "table_field"]

_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from

DICTIONARY_BATCH: Final = 2  # MessageHeader union types
RECORD_BATCH: Final = 3


def table_field(buf: Any, table: int, index: int) -> int:
    """Absolute position of field *index* of the flatbuffer table at *table* (0 when absent)."""
    vtable = table - _I32(buf, table)[0]
    if vtable < 0:  # unpack_from would count a negative position from the end
        raise struct.error("a flatbuffer vtable before the buffer's start")
    slot = 4 + 2 * index
    if slot + 2 > _U16(buf, vtable)[0]:
        return 0
    offset = _U16(buf, vtable + slot)[0]
    return table + offset if offset else 0


def header_type(meta: Any, start: int = 0) -> int:
    """``Message.header_type`` (field 1) of the flatbuffer at *start* of *meta*; 0 when absent or malformed."""
    try:
        at = table_field(meta, start + _U32(meta, start)[0], 1)
        return meta[at] if at else 0
    except (struct.error, IndexError):
        return 0
