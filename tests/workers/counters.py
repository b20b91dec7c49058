"""services.COUNTERS shared by every worker process of an HTTP test server, through a locked file."""

import fcntl
from collections.abc import Iterator, MutableMapping


class FileCounters(MutableMapping[str, int]):
    """services.COUNTERS shared by every worker process through a locked file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _read(self) -> dict[str, int]:
        try:
            with open(self.path) as f:
                return {k: int(v) for k, v in (line.split("=") for line in f.read().split())}
        except FileNotFoundError:
            return {}

    def __getitem__(self, key: str) -> int:
        return self._read().get(key, 0)

    def __setitem__(self, key: str, value: int) -> None:
        with open(self.path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            data[key] = value
            with open(self.path, "w") as f:
                f.write("\n".join(f"{k}={v}" for k, v in data.items()))

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())
