"""Reading Arrow's flatbuffer message metadata by absolute offsets (little-endian, standard library only)."""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["table_field"]

_U16 = struct.Struct("<H").unpack_from
_I32 = struct.Struct("<i").unpack_from


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
