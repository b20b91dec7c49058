"""Shared memory for pipe transports (compatibility path of the published package): ``ShmSegment``."""

from __future__ import annotations

from .transports.shm import ShmOffload as ShmOffload
from .transports.shm import ShmPipeTransport as ShmPipeTransport
from .transports.shm import ShmSegment as ShmSegment

__all__ = ["ShmOffload", "ShmPipeTransport", "ShmSegment"]
