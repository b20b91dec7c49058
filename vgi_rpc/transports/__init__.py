"""Byte-stream drivers: pipes, subprocesses and the worker pool (shared memory comes later)."""
