"""Token buckets per operation, as SP-API applies them (rate = refill per second, burst = size).

Off by default in the sandbox: the published search rate (one request every three minutes
after a burst of 20) would make every test slow. Tests that exercise throttling turn it on,
usually with small custom limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["TokenBuckets"]

#: Tokens a refill may miss by float rounding (0.4 + 0.3 s * 2/s is 0.999...; a client's
#: epoch-second clock has a resolution of about 2e-7 s): a client that waits exactly the
#: refill time must not be refused for it, as no real server would (a microsecond at 0.5/s).
_EPSILON = 1e-6


class TokenBuckets:
    """One bucket per operation name; operations without a limit are never throttled."""

    def __init__(self, limits: Mapping[str, tuple[float, float]],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._level: dict[str, float] = {op: float(burst) for op, (_, burst) in self.limits.items()}
        self._stamp: dict[str, float] = {op: monotonic() for op in self.limits}

    def take(self, operation: str) -> bool:
        """Spend one token of `operation`'s bucket; False when the bucket is empty."""
        limit = self.limits.get(operation)
        if limit is None:
            return True
        rate, burst = limit
        with self._lock:
            now = self._monotonic()
            refill = (now - self._stamp[operation]) * rate
            level = min(float(burst), self._level[operation] + refill)
            self._stamp[operation] = now
            if level < 1.0 - _EPSILON:  # a refill summed in floats may land a hair below 1
                self._level[operation] = level
                return False
            self._level[operation] = level - 1.0
            return True

    def rate(self, operation: str) -> float | None:
        """The refill rate that `x-amzn-RateLimit-Limit` reports for `operation`."""
        limit = self.limits.get(operation)
        return None if limit is None else limit[0]
