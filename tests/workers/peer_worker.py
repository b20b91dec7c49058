"""Worker serving tests.services.Everything with whichever vgi_rpc comes first on sys.path.

Run by the reference peer's ``python -I``: the repository root is appended (not prepended) to
sys.path so that the installed reference ``vgi_rpc`` wins over the checkout's.
"""

import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import vgi_rpc
from tests.services import Everything, EverythingImpl

if __name__ == "__main__":
    if os.environ.get("VGI_TEST_WHOAMI"):
        sys.stderr.write(f"vgi_rpc from {vgi_rpc.__file__}\n")
    vgi_rpc.run_server(vgi_rpc.RpcServer(Everything, EverythingImpl(), enable_describe=True))
