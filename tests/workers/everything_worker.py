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
from vgi_rpc import run_server

if __name__ == "__main__":
    if "--streams" in sys.argv:
        run_server(StreamService, StreamServiceImpl())
    elif "--calc" in sys.argv:
        run_server(Calculator, CalculatorImpl())
    else:
        run_server(Everything, EverythingImpl())
