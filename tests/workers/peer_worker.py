"""Worker serving a tests.services Protocol with whichever vgi_rpc comes first on sys.path.

Run by the reference peer's ``python -I``: the repository root is appended (not prepended) to
sys.path so that the installed reference ``vgi_rpc`` wins over the checkout's. The service is
chosen by $VGI_TEST_SERVICE (``everything``, ``streams``, ``calc`` or ``bench``) because the reference's
``run_server`` parses the command line itself.
"""

import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import vgi_rpc
from tests import services

if __name__ == "__main__":
    if os.environ.get("VGI_TEST_WHOAMI"):
        sys.stderr.write(f"vgi_rpc from {vgi_rpc.__file__}\n")
    if os.environ.get("VGI_TEST_SERVICE") == "streams":
        protocol, impl = services.StreamService, services.StreamServiceImpl()
    elif os.environ.get("VGI_TEST_SERVICE") == "calc":
        protocol, impl = services.Calculator, services.CalculatorImpl()
    elif os.environ.get("VGI_TEST_SERVICE") == "bench":
        from benchmarks.service import Bench, BenchImpl

        protocol, impl = Bench, BenchImpl()
    else:
        protocol, impl = services.Everything, services.EverythingImpl()
    vgi_rpc.run_server(vgi_rpc.RpcServer(protocol, impl, enable_describe=True))
