"""Session fixtures: one moto S3 server (and one GCS emulator) for the external-storage tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.external.stores import S3_ENV, Store, new_bucket, start_gcs_emulator, start_moto


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Store]:
    saved = {k: os.environ.get(k) for k in S3_ENV}
    os.environ.update(S3_ENV)  # boto3 in this process and in workers finds the test credentials
    store = start_moto()
    try:
        yield store
    finally:
        store.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def bucket(moto_server: Store) -> str:
    return new_bucket(moto_server)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[Store]:
    store = start_gcs_emulator()
    try:
        yield store
    finally:
        store.close()
