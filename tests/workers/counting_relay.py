"""Run a worker command, relaying stdin and stdout while counting the bytes each way.

    python counting_relay.py <counts.json> <worker command ...>

On exit writes {"to_worker": n, "from_worker": n} to counts.json: how many bytes crossed the pipe.
"""

import json
import os
import subprocess
import sys
import threading

if __name__ == "__main__":
    out_path, cmd = sys.argv[1], sys.argv[2:]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    counts = {"to_worker": 0, "from_worker": 0}

    def pump(src: int, dst: int, key: str) -> None:
        while data := os.read(src, 1 << 20):
            counts[key] += len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(dst, view) :]
        os.close(dst)

    up = threading.Thread(target=pump, args=(0, child.stdin.fileno(), "to_worker"))  # type: ignore[union-attr]
    up.start()
    pump(child.stdout.fileno(), 1, "from_worker")  # type: ignore[union-attr]
    up.join()
    child.wait()
    with open(out_path, "w") as f:
        json.dump(counts, f)
