"""The benchmark service: written against the API both vgi_rpc implementations share."""

from __future__ import annotations

import enum
import os
import sys
from typing import Protocol


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Bench(Protocol):
    """Calls whose cost is dominated by the framework, not the work."""

    def noop(self) -> None: ...

    def add(self, a: float, b: float) -> float: ...

    def mixed(self, color: Color, counts: dict[str, int], ids: frozenset[int]) -> int: ...


class BenchImpl:
    def noop(self) -> None:
        return None

    def add(self, a: float, b: float) -> float:
        return a + b

    def mixed(self, color: Color, counts: dict[str, int], ids: frozenset[int]) -> int:
        return len(color.value) + sum(counts.values()) + len(ids)


if __name__ == "__main__":
    # worker entry point; the repository root goes at the END of sys.path so that under the
    # reference interpreter (python -I) the installed reference vgi_rpc is the one imported
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import vgi_rpc

    vgi_rpc.run_server(Bench, BenchImpl())
