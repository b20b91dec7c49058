"""The typed stream examples run for real: their values, not only their types."""

from __future__ import annotations

from tests.typing.stream_examples import (
    CountHeader,
    run_accumulate,
    run_countdown,
    run_countdown_with_header,
)


def test_countdown() -> None:
    assert run_countdown(3) == [3, 2, 1]


def test_accumulate() -> None:
    assert run_accumulate([[1.0, 2.0], [3.0], [-0.5]]) == [3.0, 6.0, 5.5]


def test_countdown_with_header() -> None:
    assert run_countdown_with_header(2) == (CountHeader(2, "2 to go"), [2, 1])
    assert run_countdown_with_header(0) == (CountHeader(0, "0 to go"), [])
