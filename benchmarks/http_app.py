"""The Bench service as a WSGI app, for whichever vgi_rpc is importable (ours or the reference).

python http_app.py            serve under waitress on 127.0.0.1, print PORT:<n>
gunicorn -w 1 http_app:app    (from this file's directory)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from service import Bench, BenchImpl

import vgi_rpc
from vgi_rpc.http import make_wsgi_app

KEY = b"benchmark-signing-key-0123456789abcdef"
server = vgi_rpc.RpcServer(Bench, BenchImpl())
try:
    app = make_wsgi_app(server, prefix="/vgi", signing_key=KEY)
except TypeError:  # the reference spells the key token_key
    app = make_wsgi_app(server, prefix="/vgi", token_key=KEY)

if __name__ == "__main__":
    from waitress.server import create_server

    httpd = create_server(app, host="127.0.0.1", port=0, threads=4)
    print(f"PORT:{httpd.effective_port}", flush=True)
    httpd.run()
