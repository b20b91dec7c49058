"""Worker serving tests.services.Everything (and Calculator with --calc) on stdio."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.services import Calculator, CalculatorImpl, Everything, EverythingImpl  # noqa: E402
from vgi_rpc import run_server  # noqa: E402

if __name__ == "__main__":
    if "--calc" in sys.argv:
        run_server(Calculator, CalculatorImpl())
    else:
        run_server(Everything, EverythingImpl())
