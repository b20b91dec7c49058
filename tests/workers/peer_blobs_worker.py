"""Worker serving tests.external.service.Blobs with S3 externalization, for the reference peer's ``python -I``.

The repository root is appended to sys.path, so the installed reference ``vgi_rpc`` wins. The
store comes from $VGI_TEST_S3_URL and $VGI_TEST_BUCKET; $VGI_TEST_COMPRESSION (``zstd`` or
``gzip``) compresses the objects; the threshold is 100 000 bytes.
"""

import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import vgi_rpc
from tests.external.service import Blobs, BlobsImpl

if __name__ == "__main__":
    storage = vgi_rpc.S3Storage(os.environ["VGI_TEST_BUCKET"], endpoint_url=os.environ["VGI_TEST_S3_URL"])
    algorithm = os.environ.get("VGI_TEST_COMPRESSION")
    config = vgi_rpc.ExternalLocationConfig(
        storage=storage,
        externalize_threshold_bytes=100_000,
        compression=vgi_rpc.Compression(algorithm=algorithm) if algorithm else None,
        url_validator=None,
    )
    vgi_rpc.run_server(vgi_rpc.RpcServer(Blobs, BlobsImpl(), external_location=config))
