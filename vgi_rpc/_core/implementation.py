"""An implementation checked against its Protocol when a server is built, not when a method is called.

Every problem is found at once and named in one ``ImplementationError``: methods that are
missing or not callable, parameters of the Protocol
the method does not accept, and required parameters the Protocol does not have (``ctx`` is the
one extra a method may declare: the server passes its ``CallContext``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import ImplementationError
from .service import MethodSpec, ServiceSpec

__all__ = ["check_implementation"]


def check_implementation(spec: ServiceSpec, implementation: object) -> dict[str, Callable[..., Any]]:
    """The implementation's bound methods by name; raises ``ImplementationError`` naming every mismatch."""
    problems: list[str] = []
    methods: dict[str, Callable[..., Any]] = {}
    for name, method in spec.methods.items():
        fn = getattr(implementation, name, None)
        if fn is None or not callable(fn):
            problems.append(f"{name}() is missing")
            continue
        problems.extend(_signature_problems(method, fn))
        methods[name] = fn
    if problems:
        owner = type(implementation).__name__
        listing = "; ".join(problems)
        raise ImplementationError(f"{owner} does not implement the {spec.name} Protocol: {listing}")
    return methods


def _signature_problems(method: MethodSpec, fn: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return []
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    declared = [p.name for p in method.params]
    problems = []
    missing = [n for n in declared if n not in named and not accepts_any]
    if missing:
        problems.append(f"{method.name}() does not accept parameter(s) {', '.join(missing)} of the Protocol")
    extra = [
        n
        for n, p in params.items()
        if n not in declared
        and n != "ctx"
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if extra:
        problems.append(f"{method.name}() requires parameter(s) {', '.join(extra)} the Protocol does not have")
    return problems
