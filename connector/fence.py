"""Fencing: a run acts only while it holds its flow partition's lease.

The run lock (`StateStore.lock`) keeps two processes off one partition, but a PostgreSQL
session can end while its process lives on (a failover, `idle_session_timeout`, a network
cut, an administrator's `pg_terminate_backend`): the lock is free, another process takes the
partition, and the first one, unaware, would go on acting. So a run also holds a **lease**:
the partition's epoch in the `leases` table, incremented by each take-over. Every write the
run makes to the store checks the epoch in the same transaction, and every mutating request
is preceded by a check (`before_request`), so a run whose lease was taken stops before its
next request with `LeaseLost`. What it had in flight is settled by the run that took over,
by reading, once the take-over's fence time has passed (`Lease.fence_until`): a request that
passed its check before the take-over has landed by then.

The fence of the run in progress is a context variable, so that the transport (which knows
nothing of runs) can check it before it sends; the engine sets it in each of its threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from connector.errors import LeaseLost


@dataclass(frozen=True)
class Lease:
    """A run's hold on one flow partition (`key`): valid while `epoch` is the key's epoch.
    `fence_until`: before then, a pending entry of an earlier epoch may still be in flight
    (its writer passed its check before this take-over); `taken_at`: when this one began."""

    key: str
    epoch: int
    owner: str
    taken_at: str
    fence_until: str


@dataclass
class Fence:
    """The lease of one run once taken, and the store's check of it. Mutable on purpose:
    the run's store view is made before the lock is taken, and learns the lease after.
    `lost` makes every later request of the run fail at once, reads included."""

    lease: Lease | None = None
    check_with: Callable[[Lease], None] | None = None
    lost: LeaseLost | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, *, mutating: bool) -> None:
        """Raise `LeaseLost` if the lease is gone; asks the store only before a mutating
        request (a read after a lost lease harms nobody, but is refused once it is known)."""
        if self.lost is not None:
            raise self.lost
        lease, check_with = self.lease, self.check_with
        if lease is None or check_with is None or not mutating:
            return
        try:
            check_with(lease)
        except LeaseLost as exc:
            self.lose(exc)
            raise

    def lose(self, exc: LeaseLost) -> None:
        with self._lock:
            if self.lost is None:
                self.lost = exc


_current: ContextVar[Fence | None] = ContextVar("connector_fence", default=None)


@contextmanager
def active(fence: Fence | None) -> Iterator[None]:
    """Make `fence` the current thread's (the run's) while the block runs."""
    token = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Fence | None:
    return _current.get()


def before_request(*, mutating: bool) -> None:
    """The transport's check before it sends: raises `LeaseLost` when the run's lease is gone."""
    fence = _current.get()
    if fence is not None:
        fence.check(mutating=mutating)
