"""Our conformance worker: the vgi-rpc 0.52.2 conformance service, implemented on this library.

Run it as ``python -m vgi_rpc.conformance`` and point the reference runner at it:
``vgi-rpc-test --cmd "python -m vgi_rpc.conformance"``.
"""

from ._impl import ConformanceServiceImpl
from ._protocol import ConformanceService

__all__ = ["ConformanceService", "ConformanceServiceImpl"]
