"""Compatibility module: ``ArrowSerializableDataclass`` and ``ArrowType`` re-exported."""

from ._core.dataclass import ArrowSerializableDataclass as ArrowSerializableDataclass
from ._core.ipc import IpcValidation as IpcValidation
from ._core.typemap import ArrowType as ArrowType

__all__ = ["ArrowSerializableDataclass", "ArrowType", "IpcValidation"]
