"""Generated service-account credentials for the GCS emulator: a fresh RSA key, V4 signing, no token server.

``with_always_use_jwt_access`` makes the credentials sign their own bearer tokens, so nothing asks
Google (or the emulator, which has no token endpoint) for an access token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]


def write_key(path: Path) -> Path:
    """A service-account key file with a new 2048-bit RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "vgi-test",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": "vgi-test@vgi-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info))
    return path


def credentials(path: Path | str) -> Any:
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_file(str(path), scopes=SCOPES)
    return creds.with_always_use_jwt_access(True)


def create_bucket(endpoint: str, name: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="vgi-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    client.create_bucket(name)


def blobs(endpoint: str, name: str) -> dict[str, Any]:
    """Object name -> blob of every object in bucket *name*."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="vgi-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )
    return {b.name: b for b in client.list_blobs(name)}
