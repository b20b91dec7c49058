"""External storage: batches too big to send inline go to S3 / GCS, and a pointer batch goes instead.

Also the ``vgi_rpc.external`` module that code written for 0.52.2 imports. ``S3Storage`` and
``GCSStorage`` need the ``s3`` / ``gcs`` extras (imported when they first write).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import Compression as Compression
from .config import ExternalLocationConfig as ExternalLocationConfig
from .config import ExternalStorage as ExternalStorage
from .config import FetchConfig as FetchConfig
from .config import UploadUrl as UploadUrl
from .config import UploadUrlProvider as UploadUrlProvider
from .config import https_only_validator as https_only_validator

if TYPE_CHECKING:  # imported on first use: the fetcher and the storages are slower imports
    from .gcs import GCSStorage as GCSStorage
    from .offload import ExternalOffload as ExternalOffload
    from .s3 import S3Storage as S3Storage

_LAZY = {"GCSStorage": ".gcs", "ExternalOffload": ".offload", "S3Storage": ".s3"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vgi_rpc.external' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
    "Compression",
    "ExternalLocationConfig",
    "ExternalOffload",
    "ExternalStorage",
    "FetchConfig",
    "GCSStorage",
    "S3Storage",
    "UploadUrl",
    "UploadUrlProvider",
    "https_only_validator",
]
