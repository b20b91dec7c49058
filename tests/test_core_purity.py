"""The core imports only the standard library (no I/O modules), pyarrow and typing_extensions.

import-linter's forbidden contract names the I/O modules and the project's own dependencies;
this test closes the list: any other third-party import in ``vgi_rpc/_core`` fails it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "vgi_rpc" / "_core"
ALLOWED_THIRD_PARTY = {"pyarrow", "typing_extensions"}
FORBIDDEN_STDLIB = {"os", "threading", "socket", "subprocess", "select", "selectors", "asyncio", "multiprocessing"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_only_pure_modules() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _imports(path):
            allowed = (name in sys.stdlib_module_names and name not in FORBIDDEN_STDLIB) or name in ALLOWED_THIRD_PARTY
            assert allowed or name == "__future__", f"{path.name} imports {name}"
