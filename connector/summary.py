"""What a run did: the counts and, for each order that did not simply go through, one listed
item (which order, which action and rule, why), so that the closing report can list what it
counts (`report.describe`) and the failure count is the number of `failed:` lines.

Orders are processed on a thread pool, so every change goes through the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from connector.fetch import Window
    from connector.plan import Planned

Kind = Literal["failed", "unknown", "skipped", "watched", "waiting"]


@dataclass(frozen=True)
class Listed:
    """One order the summary counts under `kind`: `what` is the action and rule
    (`cancel_order [cancel-in-vtex]`), empty when the whole order failed (a read, a
    look-up); `reason` is the message, the same for every order a shared cause hit."""

    kind: Kind
    order: str
    what: str
    reason: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.order, self.what, self.reason) if part)


@dataclass
class Summary:
    """What a run did, for the closing report and the exit code."""

    flow: str
    window: Window | None = None
    orders: int = 0
    done: int = 0
    already: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    watched: int = 0
    parked: int = 0
    deferred: int = 0
    waiting: int = 0  # batched actions sent, their result not in yet (picked up later)
    settled: int = 0  # unknown outcomes settled in the run by reading (sent again or not)
    notified: int = 0  # orders a notification queued (read again by id unless listed)
    attention: list[str] = field(default_factory=list)
    #: Every failure and unknown outcome as one line of text (`Listed.__str__`).
    errors: list[str] = field(default_factory=list)
    listed: list[Listed] = field(default_factory=list)
    planned: list[tuple[str, Planned]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def note(self, kind: str, text: str) -> None:
        with self._lock:
            getattr(self, kind).append(text)

    def tally(self, kind: Kind, order: str, reason: str, item: Planned | None = None,
             *, count: bool = True, what: str = "") -> None:
        """List an order under `kind` and (with `count`) count it there; failures and
        unknown outcomes are also kept as the `errors` lines."""
        what = f"{item.name} [{item.rule.id}]" if item is not None else what
        entry = Listed(kind, order, what, reason)
        with self._lock:
            self.listed.append(entry)
            if count:
                setattr(self, kind, getattr(self, kind) + 1)
            if kind in ("failed", "unknown"):
                self.errors.append(str(entry))

    def of(self, kind: Kind) -> list[Listed]:
        with self._lock:
            return [entry for entry in self.listed if entry.kind == kind]
