"""A simulated clock for benchmarks: real threads, one simulated timeline, no real waiting.

`Sim` is a discrete-event scheduler over real threads. Exactly one participating thread runs
at a time (it holds the baton); it runs until it waits on simulated time (`sleep`), finishes,
or waits for tasks it spawned (`join`). The baton then goes to a thread that is ready at the
current time, else to the sleeper with the earliest wake time, and the clock jumps there.
So simulated time only moves when every participant is waiting on it, and concurrent
threads (an engine's thread pool, several workers) interleave on one timeline in the order
their simulated waits end, whatever the real CPU does.

A participant must never wait on simulated time while holding a lock another participant
may need (that would deadlock: the holder waits for the baton, the baton holder for the
lock). `SimPool` stands in for `concurrent.futures.ThreadPoolExecutor` (its `map` only) so
that an engine's pool threads are participants.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot:
    """A participant: a thread and the event that hands it the baton."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.done = False
        self.waiter: _Slot | None = None  # a parent joined on this one
        self.pending = 0  # children a joining parent still waits for
        self.error: BaseException | None = None


class Sim:
    """One simulated timeline; `now()` in seconds since `start`, `now_dt()` as a datetime."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t = 0.0
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int, _Slot]] = []
        self._ready: deque[_Slot] = deque()
        self._seq = itertools.count()
        self._local = threading.local()

    # -- clocks -----------------------------------------------------------------------------
    def now(self) -> float:
        return self.t

    def now_dt(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def epoch(self) -> float:
        return self.start.timestamp() + self.t

    # -- scheduling -------------------------------------------------------------------------
    def _me(self) -> _Slot:
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            raise RuntimeError("a thread outside the simulation waited on simulated time")
        return slot

    def _switch(self, me: _Slot) -> None:
        """Give the baton away (`me` is queued, blocked or done) and wait until it is ours."""
        with self._lock:
            if self._ready:
                nxt = self._ready.popleft()
            elif self._heap:
                wake, _, nxt = heapq.heappop(self._heap)
                self.t = max(self.t, wake)
            else:
                nxt = None
            if nxt is not None and nxt is not me:
                nxt.event.set()
        if nxt is None:
            if not me.done:
                raise RuntimeError("simulation deadlock: nothing is ready or sleeping")
            return
        if nxt is not me and not me.done:
            me.event.wait()
            me.event.clear()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time (others run meanwhile)."""
        me = self._me()
        with self._lock:
            heapq.heappush(self._heap, (self.t + max(0.0, seconds), next(self._seq), me))
        self._switch(me)

    def run(self, fn: Callable[[], R]) -> R:
        """Run `fn` in the calling thread as the simulation's first participant."""
        self._local.slot = _Slot()
        try:
            return fn()
        finally:
            self._local.slot = None

    def spawn(self, fn: Callable[[], Any]) -> _Slot:
        """Start `fn` in a new participant thread, ready at the current time."""
        slot = _Slot()

        def body() -> None:
            self._local.slot = slot
            slot.event.wait()
            slot.event.clear()
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the joining parent
                slot.error = exc
            with self._lock:
                slot.done = True
                parent = slot.waiter
                if parent is not None:
                    parent.pending -= 1
                    if parent.pending == 0:
                        self._ready.append(parent)
            self._switch(slot)

        with self._lock:
            self._ready.append(slot)
        threading.Thread(target=body, daemon=True).start()
        return slot

    def join(self, children: list[_Slot]) -> None:
        """Wait (in simulated time) until every child has finished; re-raise the first error."""
        me = self._me()
        with self._lock:
            me.pending = 0
            for child in children:
                if not child.done:
                    child.waiter = me
                    me.pending += 1
            blocked = me.pending > 0
        if blocked:
            self._switch(me)
        for child in children:
            if child.error is not None:
                raise child.error


class SimPool:
    """`ThreadPoolExecutor(max_workers=n)` for `with ... as pool: pool.map(fn, items)`,
    whose `n` threads are participants of `sim`."""

    sim: Sim  # set by `patched_pool`

    def __init__(self, max_workers: int) -> None:
        self.lanes = max(1, max_workers)

    def __enter__(self) -> SimPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        work = list(items)
        results: list[Any] = [None] * len(work)
        feed = iter(enumerate(work))

        def lane() -> None:
            for index, item in feed:  # one baton holder at a time: no race on the iterator
                results[index] = fn(item)

        self.sim.join([self.sim.spawn(lane) for _ in range(min(self.lanes, len(work)))])
        return iter(results)


def pool_for(sim: Sim) -> type[SimPool]:
    """A `SimPool` class bound to `sim`, to stand in for ThreadPoolExecutor."""
    return type("BoundSimPool", (SimPool,), {"sim": sim})
