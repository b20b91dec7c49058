"""Compatibility module: the call and stream names, re-exported for code written against vgi-rpc."""

from . import __all__ as _all
from . import *  # noqa: F403

__all__ = list(_all)
