"""Token buckets per (system, operation): SP-API's published rate and burst, learned rates.

Split from the transport so the rate model (reserve a token now, wait the debt) can be read
and tested on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from connector.errors import ConnectorError
from connector.model import RateLimit


class TokenBucket:
    """`rate` tokens per second, at most `burst` stored; SP-API's own model.

    `reserve` takes a token immediately, letting the balance go negative, and returns how
    long the caller must wait. Threads are therefore served in arrival order with one
    sleep each, instead of polling and racing for each refill.
    """

    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0 or burst < 1:
            raise ConnectorError(f"invalid rate limit: rate {rate}/s, burst {burst}")
        self._rate = float(rate)
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._rate)
        self._last = now

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before using it (0 if available)."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return -self._tokens / self._rate if self._tokens < 0 else 0.0

    def set_rate(self, rate: float) -> None:
        """Change the refill speed; tokens accrued so far count at the old rate."""
        with self._lock:
            self._refill()
            self._rate = float(rate)

    def drain(self) -> None:
        """Empty the bucket after a 429: the server's bucket is empty, ours should be too."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)


class RateLimiter:
    """Token buckets per (system, operation), from the mappings' `rate_limits`.

    An operation without a declared limit is not throttled, until SP-API reports its rate
    in `x-amzn-RateLimit-Limit`; the bucket then learned gets `learned_burst` tokens, since
    the header gives no burst.
    """

    def __init__(self, limits: Mapping[str, Mapping[str, RateLimit]] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, learned_burst: int = 1) -> None:
        self._sleep = sleep
        self._clock = clock
        self._learned_burst = learned_burst
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {
            (system, op): TokenBucket(limit.rate, limit.burst, clock=clock)
            for system, ops in (limits or {}).items() for op, limit in ops.items()
        }

    def _bucket(self, system: str, operation: str) -> TokenBucket | None:
        with self._lock:
            return self._buckets.get((system, operation))

    def rate(self, system: str, operation: str) -> float | None:
        bucket = self._bucket(system, operation)
        return bucket.rate if bucket else None

    def acquire(self, system: str, operation: str) -> float:
        """Block until the bucket grants a request; return the seconds waited."""
        bucket = self._bucket(system, operation)
        wait = bucket.reserve() if bucket else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def drain(self, system: str, operation: str) -> None:
        bucket = self._bucket(system, operation)
        if bucket:
            bucket.drain()

    def update_from_header(self, system: str, operation: str, value: str | None) -> None:
        """Apply `x-amzn-RateLimit-Limit` (requests per second); unusable values are ignored."""
        if not value or not operation:
            return
        try:
            rate = float(value.strip())
        except ValueError:
            return
        if not 0 < rate < float("inf"):
            return
        with self._lock:
            bucket = self._buckets.get((system, operation))
            if bucket is None:
                self._buckets[(system, operation)] = TokenBucket(
                    rate, self._learned_burst, clock=self._clock)
                return
        bucket.set_rate(rate)
