"""Worker serving tests.external.service.Blobs (stdio, or --http); run_server reads the --external-* flags."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.external.service import Blobs, BlobsImpl
from vgi_rpc import run_server

if __name__ == "__main__":
    run_server(Blobs, BlobsImpl())
