"""Worker serving tests.services.Everything (and Calculator with --calc) on stdio."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.services import (
    Calculator,
    CalculatorImpl,
    Everything,
    EverythingImpl,
    StreamService,
    StreamServiceImpl,
)
from vgi_rpc import RpcServer, run_server

if __name__ == "__main__":
    describe = "--describe" in sys.argv
    if "--streams" in sys.argv:
        run_server(RpcServer(StreamService, StreamServiceImpl(), enable_describe=describe))
    elif "--calc" in sys.argv:
        run_server(Calculator, CalculatorImpl())
    else:
        run_server(RpcServer(Everything, EverythingImpl(), enable_describe=describe))
