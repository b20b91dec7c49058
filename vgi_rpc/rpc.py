"""Compatibility module: the call and stream names, re-exported for code written against vgi-rpc."""

from . import *  # noqa: F403
from . import __all__ as _all

__all__ = list(_all)
