"""``S3Storage``: external storage on Amazon S3 (or any S3-compatible server) through boto3.

boto3 is imported when the first object is written (the ``s3`` extra). Objects are named
``{prefix}{uuid}.arrow``; readers get a pre-signed GET URL valid for ``presign_expiry_seconds``.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

import pyarrow as pa

from .config import UploadUrl
from .offload import object_key

__all__ = ["S3Storage"]


class S3Storage:
    """An ``ExternalStorage`` (and ``UploadUrlProvider``) over one S3 bucket.

    Args:
        bucket: The bucket name.
        prefix: Prepended to every object name.
        presign_expiry_seconds: Lifetime of the pre-signed URLs handed out.
        region_name: The bucket's region (boto3's default when None).
        endpoint_url: An S3-compatible server instead of AWS (e.g. ``http://127.0.0.1:5000``).

    Credentials come from boto3's usual chain (environment, config files, instance roles).

    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "vgi-rpc/",
        presign_expiry_seconds: int = 3600,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.presign_expiry_seconds = presign_expiry_seconds
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(
                    "s3",
                    region_name=self.region_name,
                    endpoint_url=self.endpoint_url,
                    config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
                )
            return self._client

    def upload(self, data: bytes, schema: pa.Schema, *, content_encoding: str | None = None) -> str:
        """Write one object; a pre-signed GET URL for it."""
        key = object_key(self.prefix)
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        s3 = self._s3()
        s3.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType="application/vnd.apache.arrow.stream", **extra
        )
        return self._presign("get_object", key)

    def generate_upload_url(self, schema: pa.Schema) -> UploadUrl:
        """A pre-signed PUT URL for a client's upload and the GET URL of the same object."""
        key = object_key(self.prefix)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.presign_expiry_seconds)
        return UploadUrl(self._presign("put_object", key), self._presign("get_object", key), expires)

    def _presign(self, operation: str, key: str) -> str:
        url: str = self._s3().generate_presigned_url(
            operation, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.presign_expiry_seconds
        )
        return url
