"""Hypothesis samples encoded by us, decoded and re-encoded by the reference, decoded by us."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.services import Color, Everything, Point, Shape
from vgi_rpc import connect

pytestmark = pytest.mark.interop
PEER_WORKER = str(Path(__file__).resolve().parents[1] / "workers" / "peer_worker.py")

i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=False)
points = st.builds(Point, x=floats, y=floats)
shapes = st.builds(
    Shape,
    name=st.text(max_size=10),
    color=st.sampled_from(Color),
    corners=st.lists(points, max_size=3),
    center=st.none() | points,
    tags=st.dictionaries(st.text(max_size=5), i64, max_size=3),
)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def peer(peer_python: Path) -> Iterator[Everything]:
    os.environ["VGI_TEST_SERVICE"] = "everything"
    with connect(Everything, [str(peer_python), "-I", PEER_WORKER]) as proxy:
        yield proxy


@SETTINGS
@given(value=shapes)
def test_dataclass_with_nested_structs_enums_maps(peer: Everything, value: Shape) -> None:
    assert peer.echo_shape(value=value) == value


@SETTINGS
@given(value=st.dictionaries(st.text(max_size=8), i64, max_size=6))
def test_maps(peer: Everything, value: dict[str, int]) -> None:
    assert peer.echo_dict(value=value) == value


@SETTINGS
@given(value=st.lists(i64, max_size=8))
def test_lists(peer: Everything, value: list[int]) -> None:
    assert peer.echo_list(value=value) == value


@SETTINGS
@given(value=st.frozensets(i64, max_size=8))
def test_frozensets(peer: Everything, value: frozenset[int]) -> None:
    assert peer.echo_frozenset(value=value) == value


@SETTINGS
@given(value=st.none() | st.text())
def test_optional_strings(peer: Everything, value: str | None) -> None:
    assert peer.echo_optional(value=value) == value
