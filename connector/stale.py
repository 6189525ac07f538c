"""Pending entries that no plan produces any more, settled when their order is read again.

A run that dies (or loses its lease) between an action's intent and its outcome leaves the
entry `pending`. The next run that reads the order settles it through the ordinary path when
its fresh plan has the same key. But the order may have changed meanwhile (a new version
makes new keys), and then no plan ever produces that key again: before, such an entry stayed
pending forever, and `connector status` listed it as "settled by the next run". It is settled
the way an unknown outcome is (`connector.engine`): a fresh read and plan of its order that no
longer calls for the action means its effect is there or no longer wanted, so the entry is
recorded `settled`, with why. Only entries whose writer can no longer be sending are settled
(`StateStore.pending_writer`: not a live lease's, not this run's own), and not a batch's.

The run loads its flow's pending entries once (few, normally none), so an order without one
costs a dictionary look-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from connector import observe
from connector.record import Recorder
from connector.state.store import LedgerEntry, StateStore


@dataclass
class StalePending:
    """The flow's pending entries as the run began, by order id (mutable: settled ones leave)."""

    by_order: dict[str, list[LedgerEntry]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: StateStore | None, flow: str) -> StalePending:
        found = cls()
        for entry in store.entries(flow, "pending") if store is not None else ():
            found.by_order.setdefault(entry.order_id, []).append(entry)
        return found

    def settle(self, order_id: str, planned: Iterable[str], store: StateStore | None,
               recorder: Recorder | None) -> int:
        """After the order's last plan (its keys, `planned`) in this run: settle its pending
        entries that the plan does not have; how many."""
        entries = self.by_order.pop(order_id, None)
        if not entries or store is None or recorder is None:
            return 0
        keys = set(planned)
        settled = 0
        for entry in entries:
            if entry.key in keys or store.batch_of(entry.key) is not None:
                continue
            current = store.entry(entry.key)
            if current is None or current.status != "pending":
                continue  # settled or sent meanwhile (by this run, through its plan)
            if store.pending_writer(current) in ("live", "mine"):
                continue  # it may still be in flight: a later run reads it again
            recorder.settled(entry.key, "settled by reading: a fresh read of the order no "
                                        "longer calls for it (the order changed since)")
            observe.emit("action.settled", resend=False, stale=True, action=entry.action)
            settled += 1
        return settled
