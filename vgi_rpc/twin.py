"""The async twin of a Protocol: checked against the Protocol when an async connection opens.

A twin declares the Protocol's methods with the same parameters, unary ones ``async def`` with the
same result and stream ones plain ``def`` (returning ``AsyncStreamSession``); it only types the
proxy for a type checker. The wire name, schemas and requests stay the Protocol's.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from ._core.service import ServiceSpec

__all__ = ["check_twin"]


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations: compare what the signature says
        return {n: p.annotation for n, p in inspect.signature(fn).parameters.items()}


def check_twin(service: ServiceSpec, twin: type) -> None:
    """Check that *twin* declares the Protocol's methods with its parameters, as coroutines.

    Unary methods must be ``async def`` with the same parameters and result; stream methods
    plain ``def`` with the same parameters (they return an :class:`AsyncStreamSession`).
    Raises ``TypeError`` naming every difference.
    """
    problems: list[str] = []
    for name, spec in service.methods.items():
        ours, theirs = getattr(twin, name, None), getattr(service.protocol, name)
        if ours is None:
            problems.append(f"{name}() is missing")
            continue
        if spec.is_stream == inspect.iscoroutinefunction(ours):
            problems.append(
                f"{name}() must be {'def (returning AsyncStreamSession)' if spec.is_stream else 'async def'}"
            )
        want, got = _hints(theirs), _hints(ours)
        want_params = [n for n in inspect.signature(theirs).parameters if n != "self"]
        got_params = [n for n in inspect.signature(ours).parameters if n != "self"]
        if want_params != got_params:
            problems.append(f"{name}() takes ({', '.join(got_params)}), the Protocol ({', '.join(want_params)})")
            continue
        for param in want_params:
            if want.get(param) != got.get(param):
                problems.append(f"{name}() parameter {param!r} is {got.get(param)}, the Protocol's {want.get(param)}")
        if not spec.is_stream and want.get("return") != got.get("return"):
            problems.append(f"{name}() returns {got.get('return')}, the Protocol {want.get('return')}")
    extra = sorted(
        n for n, v in vars(twin).items() if callable(v) and not n.startswith("_") and n not in service.methods
    )
    problems.extend(f"{n}() is not a method of the Protocol" for n in extra)
    if problems:
        raise TypeError(f"{twin.__name__} is not an async twin of {service.protocol.__name__}: " + "; ".join(problems))
