"""The reference's HTTP server for tests.external.service.Blobs with S3 externalization (run by its ``python -I``).

Prints ``PORT:<n>`` once it listens on 127.0.0.1. The store comes from $VGI_TEST_S3_URL and
$VGI_TEST_BUCKET; threshold 100 000 bytes; prefix ``/vgi``.
"""

import os
import sys
import warnings
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import vgi_rpc
from tests.external.service import Blobs, BlobsImpl
from vgi_rpc.http import make_wsgi_app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    storage = vgi_rpc.S3Storage(os.environ["VGI_TEST_BUCKET"], endpoint_url=os.environ["VGI_TEST_S3_URL"])
    config = vgi_rpc.ExternalLocationConfig(storage=storage, externalize_threshold_bytes=100_000, url_validator=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = make_wsgi_app(vgi_rpc.RpcServer(Blobs, BlobsImpl(), external_location=config), prefix="/vgi")
    httpd = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    print(f"PORT:{httpd.server_port}", flush=True)
    httpd.serve_forever()
