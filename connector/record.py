"""Stage 9, record: every write a run makes to the state store, in one place.

Exactly-once execution rests on the order of these writes, so they have one owner:
- an action's **intent** (`pending`) is recorded before its first request, and its **outcome**
  (`done` with its outputs, `failed`, `parked`, `settled`) after the last answer; a key that
  is `done` is never sent again, and a `pending` one left by a crash is settled by reading,
  never by resending blindly;
- a **batch** is recorded with its members before its effect step and its progress before
  and after that step, so a run killed mid-batch leaves what the next one may do;
- an order that must be read again goes on the **watch list**, and leaves it once done;
- the **cursor** moves past a window only when every order of it is recorded one way or the
  other (done, failed and watched, or watched), so no order falls between two runs;
- a **report** is recorded once per order version, so a rerun does not repeat it;
- the partition's **run record** is what `connector status` shows.

Each write is the store's own committed transaction: once a method here returns, a crash
cannot lose it, and a write that fails raises `ConnectorError` (never swallowed: an
unrecorded outcome is how actions get sent twice). Reads (`entry`, `watched`, `outputs`,
`live_batches`, …) stay on the store; only writes pass through here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.plan import Planned
from connector.state.batches import BatchStatus
from connector.state.store import LedgerEntry, QueuedOrder, RunRecord, StateStore


def ledger_summary(planned: Planned) -> str:
    """What a ledger entry says it stands for (rule, action, arguments), for `status`."""
    return json.dumps({"rule": planned.rule.id, "action": planned.name, "args": planned.args},
                      sort_keys=True, default=str)


@dataclass(frozen=True)
class Recorder:
    """The record stage's writes for one flow partition (`flow_key`: its cursor, watch list
    and batches; `partition`: named on the ledger entries its runs begin)."""

    store: StateStore
    flow_key: str = ""
    partition: str = ""

    # -- the ledger: intent before the effect, outcome after ------------------------------
    def intent(self, planned: Planned) -> LedgerEntry:
        """Record that `planned` is about to be sent (`pending`), before any request: the
        entry comes back `new` only to the call that created it, so a caller tells its own
        fresh intent from one a crashed run left (to be settled by reading, not resent)."""
        order_id = str(planned.context.get("source", {}).get("id"))
        return self.store.begin(planned.key, flow=planned.flow, order_id=order_id,
                                action=planned.name, summary=ledger_summary(planned),
                                partition=self.partition)

    def resend(self, key: str) -> LedgerEntry:
        """A failed, crashed (`pending`) or settled entry is to be sent again: only after a
        fresh read and plan still called for this very key, so its effect is not there."""
        return self.store.retry(key)

    def done(self, key: str, outputs: Mapping[str, Any]) -> LedgerEntry:
        """The action took effect: its key is never sent again, and its outputs feed the
        order's later actions (in this run and later ones)."""
        return self.store.complete(key, dict(outputs))

    def failed(self, key: str, error: str, *, retryable: bool) -> LedgerEntry:
        """The action did not take effect: counted, retried by a later run after its
        backoff (or refused for good when not `retryable`)."""
        return self.store.fail(key, error, retryable=retryable)

    def parked(self, key: str, reason: str) -> LedgerEntry:
        """Set aside for a person (`connector retry`): failed too often, or a batch whose
        remote side never finished; not tried again every run."""
        return self.store.park(key, reason)

    def settled(self, key: str, reason: str) -> LedgerEntry:
        """A write whose outcome was unknown, that a fresh read showed is no longer called
        for (or a released batch member): not `pending` any more, and sent again only if a
        later plan still asks for it."""
        return self.store.settle(key, reason)

    def report(self, planned: Planned, message: object) -> bool:
        """A `report` action, recorded once per order version (its key): True only the first
        time, so an attention item is said once, not on every rerun."""
        context = planned.context
        order_id = str((context.get("source") or {}).get("id") or context.get("id") or "?")
        entry = self.store.begin(planned.key, flow=planned.flow, order_id=order_id,
                                 action="report", summary=ledger_summary(planned),
                                 partition=self.partition)
        if entry.new:
            self.store.complete(planned.key, {"message": message})
        return entry.new

    # -- batches: recorded before their effect, progress before and after it --------------
    def batch_opened(self, batch_id: str, *, action: str, context: dict[str, Any],
                     keys: Sequence[str]) -> None:
        """A new batch and its members, at once, before any of its requests: a run that dies
        now leaves an `open` batch, whose members the next run releases and re-plans."""
        self.store.open_batch(batch_id, flow_key=self.flow_key, action=action,
                              context=context, keys=keys)

    def batch_progress(self, batch_id: str, *, status: BatchStatus, step: int, polls: int,
                       outputs: dict[str, Any], check_after: datetime | None = None) -> None:
        """Where the batch stands (`sending` before its effect step, `waiting` or `unknown`
        after, `done` once its members' outcomes are recorded, which frees their keys)."""
        self.store.save_batch(batch_id, status=status, step=step, polls=polls,
                              outputs=outputs, check_after=check_after)

    # -- the watch list, the queue, the cursor and the run ---------------------------------
    def watch(self, order_id: str, until: str, payload: Mapping[str, Any]) -> None:
        """Read the order again each run until `until` (it waits for its counterpart, or an
        action of it failed): the cursor may then move past it."""
        self.store.watch(self.flow_key, order_id, until, json.dumps(dict(payload)))

    def unwatch(self, order_id: str) -> None:
        """Done with a watched order: it is not read again."""
        self.store.unwatch(self.flow_key, order_id)

    def dequeued(self, order: QueuedOrder) -> None:
        """A notified order is recorded (done, failed and watched, or watched): its queue
        entry goes; one notified again meanwhile (a newer version) stays."""
        self.store.dequeue(order)

    def cursor(self, before: str) -> None:
        """Every order changed before `before` is recorded: the next run lists from there."""
        self.store.set_cursor(self.flow_key, before)

    def run(self, record: RunRecord) -> None:
        """The partition's last run, for `connector status`."""
        self.store.record_run(record)
