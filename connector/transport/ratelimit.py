"""Token buckets per (system, operation): the mappings' declared rate and burst, learned rates.

Split from the transport so the rate model (reserve a token now, wait the debt) can be read
and tested on its own.

SP-API's buckets are per application and seller, VTEX's limit per account: the server's
bucket is shared by every process that calls with the same credentials. So when a run has a
state store, its buckets live there (`SharedBucket`, one row per account's operation, taken
with one atomic upsert; see `SqlStore.take_token`), and every worker and `apply` process on
that store draws from the same tokens; a 429 seen by one empties the bucket for all. Without
a store (a plan on a fresh project) the buckets are this process's own (`TokenBucket`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from connector import observe
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


class Bucket(Protocol):
    """What the limiter needs of a bucket, local or shared."""

    @property
    def rate(self) -> float: ...
    def reserve(self) -> float: ...
    def set_rate(self, rate: float) -> None: ...
    def drain(self) -> None: ...


class TokenStore(Protocol):
    """Where shared buckets live: the state store (`SqlStore` has both methods)."""

    def take_token(self, bucket: str, *, rate: float, burst: int, now: float) -> float: ...
    def drain_bucket(self, bucket: str, *, rate: float, burst: int, now: float) -> None: ...


class SharedBucket:
    """A token bucket kept in the state store, shared by every process that uses the store.

    The same model as `TokenBucket` (reserve now, wait the debt), with the tokens in a row
    that one SQL statement updates atomically. Its clock is the wall clock, because the
    processes sharing it have no other clock in common. The refill rate is this process's:
    declared in the mapping, or learned from a response header.
    """

    def __init__(self, store: TokenStore, key: str, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.time) -> None:
        if not rate > 0 or burst < 1:
            raise ConnectorError(f"invalid rate limit: rate {rate}/s, burst {burst}")
        self._store = store
        self._key = key
        self._rate = float(rate)
        self._burst = burst
        self._clock = clock

    @property
    def rate(self) -> float:
        return self._rate

    def reserve(self) -> float:
        tokens = self._store.take_token(self._key, rate=self._rate, burst=self._burst,
                                        now=self._clock())
        return -tokens / self._rate if tokens < 0 else 0.0

    def set_rate(self, rate: float) -> None:
        self._rate = float(rate)

    def drain(self) -> None:
        self._store.drain_bucket(self._key, rate=self._rate, burst=self._burst,
                                 now=self._clock())


def account_key(*parts: str) -> str:
    """A bucket's account as stored: a digest of what identifies the account (credentials
    among them), so that no secret reaches the state store's tables."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


class RateLimiter:
    """Token buckets per (system, operation), from the mappings' `rate_limits`.

    An operation without a declared limit is not throttled, until the server reports its
    rate in one of the mapping's `rate_limit_headers`; the bucket then learned gets
    `learned_burst` tokens, since such a header gives no burst.

    With `shared` (the state store), the buckets are `SharedBucket`s named
    `<account>/<system>/<operation>`, where `accounts` gives each system's account key
    (`account_key` of what identifies it; the system's name alone when absent); their clock
    is `wall_clock`. Without, they are this process's own, on `clock`.
    """

    def __init__(self, limits: Mapping[str, Mapping[str, RateLimit]] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, learned_burst: int = 1,
                 shared: TokenStore | None = None, accounts: Mapping[str, str] | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._sleep = sleep
        self._clock = clock
        self._learned_burst = learned_burst
        self._shared = shared
        self._accounts = dict(accounts or {})
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {
            (system, op): self._new_bucket(system, op, limit.rate, limit.burst)
            for system, ops in (limits or {}).items() for op, limit in ops.items()
        }

    def _new_bucket(self, system: str, operation: str, rate: float, burst: int) -> Bucket:
        if self._shared is None:
            return TokenBucket(rate, burst, clock=self._clock)
        account = self._accounts.get(system, system)
        return SharedBucket(self._shared, f"{account}/{system}/{operation}", rate, burst,
                            clock=self._wall_clock)

    def _bucket(self, system: str, operation: str) -> Bucket | None:
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
            # before the sleep, so that a terminal can say what it waits for (observe.progress)
            observe.emit("ratelimit.waiting", system=system, operation=operation,
                         seconds=round(wait, 3))
            self._sleep(wait)
        return wait

    def drain(self, system: str, operation: str) -> None:
        bucket = self._bucket(system, operation)
        if bucket:
            bucket.drain()

    def update_from_header(self, system: str, operation: str, value: str | None) -> None:
        """Apply a rate header's value (requests per second; which header is the mapping's
        `rate_limit_headers`); unusable values are ignored."""
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
                self._buckets[(system, operation)] = self._new_bucket(
                    system, operation, rate, self._learned_burst)
                return
        bucket.set_rate(rate)
