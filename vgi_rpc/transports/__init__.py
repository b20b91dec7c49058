"""Byte-stream drivers: pipes and subprocesses (shared memory and the pool come later)."""
