"""Results over 1 MiB arrive whole over every transport (over WSGI they leave through wsgi.file_wrapper)."""

from __future__ import annotations

import os

import pytest

from tests.transports.factories import KINDS, open_service


@pytest.mark.parametrize("kind", KINDS)
def test_a_3_mib_result_arrives_byte_for_byte(kind: str) -> None:
    payload = os.urandom(3 << 20)  # incompressible: the body stays over 1 MiB however it is coded
    with open_service(kind, "everything") as proxy:
        assert proxy.echo_bytes(value=payload) == payload
        assert proxy.echo_bytes(value=payload[: (1 << 20) + 1]) == payload[: (1 << 20) + 1]
        assert proxy.echo_str(value="small") == "small"  # and the connection serves on
