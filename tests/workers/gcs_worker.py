"""Worker serving tests.external.service.Blobs with GCS externalization (stdio, or --http).

$VGI_TEST_GCS_KEY (a service-account key file), $VGI_TEST_GCS_URL (the emulator) and
$VGI_TEST_BUCKET configure the store; the threshold is 100 000 bytes.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.external.gcs_keys import credentials
from tests.external.service import Blobs, BlobsImpl
from vgi_rpc import ExternalLocationConfig, GCSStorage, RpcServer, run_server

if __name__ == "__main__":
    storage = GCSStorage(
        os.environ["VGI_TEST_BUCKET"],
        project="vgi-test",
        credentials=credentials(os.environ["VGI_TEST_GCS_KEY"]),
        endpoint_url=os.environ["VGI_TEST_GCS_URL"],
    )
    config = ExternalLocationConfig(storage, externalize_threshold_bytes=100_000, url_validator=None)
    run_server(RpcServer(Blobs, BlobsImpl(), external_location=config))
