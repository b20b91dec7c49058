"""A worker that fails in a chosen way: argv[1] is crash-at-start, print-before, or serve (StreamService + Faults)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.services import Faults, FaultsImpl
from vgi_rpc import run_server

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "crash-at-start":
        sys.stderr.write("loading config\nboom: the worker's config file is missing\n")
        sys.stderr.flush()
        sys.exit(3)
    if mode == "print-before":
        print("hello from the worker")  # a stray print before run_server: lands on the protocol's stdout
        sys.stdout.flush()
    if mode == "slow-start":
        time.sleep(0.2)
    run_server(Faults, FaultsImpl())
