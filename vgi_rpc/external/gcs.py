"""``GCSStorage``: external storage on Google Cloud Storage through google-cloud-storage.

google-cloud-storage is imported when the first object is written (the ``gcs`` extra). Objects
are named ``{prefix}{uuid}.arrow``; readers get a V4 signed GET URL valid for
``presign_expiry_seconds``. Signing needs credentials that can sign (a service-account key);
anonymous credentials cannot.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pyarrow as pa

from .config import UploadUrl
from .offload import object_key

__all__ = ["GCSStorage"]


class GCSStorage:
    """An ``ExternalStorage`` (and ``UploadUrlProvider``) over one GCS bucket.

    Args:
        bucket: The bucket name.
        prefix: Prepended to every object name.
        presign_expiry_seconds: Lifetime of the signed URLs handed out.
        project: The Google Cloud project (the client's default when None).
        credentials: ``google.auth`` credentials that can sign URLs (the default chain when None).
        endpoint_url: Another GCS-compatible endpoint (an emulator) instead of Google's.

    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "vgi-rpc/",
        presign_expiry_seconds: int = 3600,
        project: str | None = None,
        credentials: Any | None = None,
        *,
        endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.presign_expiry_seconds = presign_expiry_seconds
        self.project = project
        self.credentials = credentials
        self.endpoint_url = endpoint_url
        self._bucket: Any = None
        self._lock = threading.Lock()

    def _gcs_bucket(self) -> Any:
        with self._lock:
            if self._bucket is None:
                from google.cloud import storage

                options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
                client = storage.Client(project=self.project, credentials=self.credentials, client_options=options)
                self._bucket = client.bucket(self.bucket)
            return self._bucket

    def upload(self, data: bytes, schema: pa.Schema, *, content_encoding: str | None = None) -> str:
        """Write one object; a signed GET URL for it."""
        blob = self._gcs_bucket().blob(object_key(self.prefix))
        if content_encoding:
            blob.content_encoding = content_encoding
        blob.upload_from_string(data, content_type="application/vnd.apache.arrow.stream")
        return self._sign(blob, "GET")

    def generate_upload_url(self, schema: pa.Schema) -> UploadUrl:
        """A signed PUT URL for a client's upload and the signed GET URL of the same object."""
        blob = self._gcs_bucket().blob(object_key(self.prefix))
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.presign_expiry_seconds)
        return UploadUrl(self._sign(blob, "PUT"), self._sign(blob, "GET"), expires)

    def _sign(self, blob: Any, method: str) -> str:
        url: str = blob.generate_signed_url(
            version="v4", expiration=datetime.timedelta(seconds=self.presign_expiry_seconds), method=method
        )
        return url
