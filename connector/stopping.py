"""A worker's graceful stop: its runs end at a safe point, and no wait outlasts the deadline.

On its first SIGTERM (or SIGINT) a worker asks its runs to stop (`request`): each run stops
taking new orders (a safe point is between two orders: an order's actions are sent, recorded,
or not begun), leaves its cursor where it was so that the orders it did not reach are listed
again, and ends; meanwhile the worker keeps its heartbeat, so the fleet does not take its
partitions from it while they run. A run that would sleep past the deadline (a rate limit's
wait, a poll's interval) is stopped when the deadline comes, before its next request, with
`WorkerStopping`: what it had pending is settled by reading by the next run, as after a lost
lease. The request is process-wide, as a signal is: `apply` never makes one.
"""

from __future__ import annotations

import threading
import time

from connector.errors import WorkerStopping

__all__ = ["WorkerStopping", "request", "requested", "reset", "sleep"]

_requested = threading.Event()
_deadline = [float("inf")]  # time.monotonic() by which every sleep ends


def request(seconds: float) -> None:
    """Ask every run of this process to stop at its next safe point; no sleep lasts more
    than `seconds` from now."""
    _deadline[0] = min(_deadline[0], time.monotonic() + max(0.0, seconds))
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    """Forget a stop request (tests; a process normally exits after one)."""
    _requested.clear()
    _deadline[0] = float("inf")


def sleep(seconds: float) -> None:
    """`time.sleep`, cut short at the stop deadline with `WorkerStopping` (the caller is
    about to send a request, which it must not once the worker is stopping past its time)."""
    end = time.monotonic() + max(0.0, seconds)
    while True:
        now = time.monotonic()
        if now >= end:
            return
        if now >= _deadline[0]:
            raise WorkerStopping("the worker is stopping and its stop timeout has come: this "
                                 "run stops before its next request; the next run settles "
                                 "what it left pending by reading")
        limit = min(end, _deadline[0]) - now
        if _requested.is_set():
            time.sleep(limit)
        else:
            _requested.wait(limit)  # woken by a stop request: its deadline may come sooner
