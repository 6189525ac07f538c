"""One planned action of a run: sent (`connector.execute`), gathered for a batch, or a
built-in (`watch`, `report`), and what its outcome counts as in the run's summary.

Two outcomes are left to the caller to count, because only a fresh read can say what they
were: a refusal (a 4xx, a `fail_if`) comes back as REFUSED, a stale plan or a real failure;
an unknown outcome (a 5xx, a timeout) is counted once in-run settling has had its say.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector import observe
from connector.execute.batch_outcomes import BatchedMembers
from connector.errors import ConnectorError
from connector.execute import (
    DEFERRED, DONE, FAILED, PARKED, QUEUED, UNKNOWN, WAITING, Outcome, RetryAcrossRuns, execute,
)
from connector.plan import Planned
from connector.record import Recorder
from connector.state.store import StateStore
from connector.summary import Summary
from connector.transport.client import SystemClient

#: An action the remote system refused (4xx, `fail_if`): stale plan or real failure.
REFUSED = "refused"


def order_of(item: Planned) -> str:
    return str(item.context["source"].get("id"))


def ended(item: Planned, outcome: str, message: str, started: float, **more: Any) -> None:
    """The `action.end` event: the action's outcome as the summary counts it, and timing."""
    level = logging.WARNING if outcome in (FAILED, UNKNOWN, PARKED) else logging.INFO
    with observe.bound(rule=item.rule.id, action=item.name, key=item.key):
        observe.emit("action.end", level, outcome=outcome, message=message or None,
                     reasons=list(item.reasons) or None,
                     duration_seconds=round(time.monotonic() - started, 3), **more)


@dataclass(frozen=True)
class Dispatcher:
    """Runs a flow run's planned actions one at a time (the run's clients, store and
    options; `batches` when the run sends batched actions)."""

    clients: Mapping[str, SystemClient]
    store: StateStore | None
    recorder: Recorder | None
    batches: BatchedMembers | None
    summary: Summary
    now: datetime
    partition: str
    retry: RetryAcrossRuns
    poll_scale: float
    sleep: Callable[[float], None]

    def act(self, item: Planned) -> tuple[str, str]:
        """Run one planned action: (its status, its failure message). A refusal comes back
        as REFUSED, uncounted: the caller tells a stale plan from a real failure."""
        with observe.bound(rule=item.rule.id, action=item.name, key=item.key):
            started = time.monotonic()
            status, message = self._counted(item)
            if status != REFUSED:  # told by the caller, once it knows stale from failed
                ended(item, status, message, started)
            return status, message

    def failed(self, item: Planned, message: str) -> None:
        self.summary.tally("failed", order_of(item), message, item)

    def _counted(self, item: Planned) -> tuple[str, str]:
        store = self.store
        if store is None:
            raise ConnectorError("apply needs a state store")
        if item.action is None:
            return self._builtin(item), ""
        if not item.runnable:
            self.summary.tally("skipped", order_of(item), "; ".join(map(str, item.reasons)),
                               item)
            return "skipped", ""
        outcome: Outcome
        if item.action.batch is not None and self.batches is not None:
            outcome = self.batches.gather(item)
        else:
            outcome = execute(self.clients[item.system], item, store, sleep=self.sleep,
                              poll_scale=self.poll_scale, retry=self.retry, now=self.now,
                              partition=self.partition)
        if outcome.status in (QUEUED, WAITING):
            return outcome.status, outcome.message
        if outcome.status == PARKED:
            # Said once, when it is parked; then left to a person, not a failure every run.
            if outcome.fresh:
                self.summary.note("attention", f"{order_of(item)}: {item.name} "
                                               f"[{item.rule.id}]: {outcome.message}")
            self.summary.add(parked=1)
            return PARKED, outcome.message
        if outcome.status == DEFERRED:
            self.summary.add(deferred=1)
            return DEFERRED, outcome.message
        if outcome.status == FAILED:
            if not outcome.retryable:
                return REFUSED, outcome.message
            self.failed(item, outcome.message)
            return FAILED, outcome.message
        if outcome.status != UNKNOWN:  # told by the caller, once settling has had its say
            self.summary.add(**{"done" if outcome.status == DONE else "already": 1})
        return outcome.status, outcome.message

    def _builtin(self, item: Planned) -> str:
        """`watch` asks the caller to watch the order; `report` is recorded once per order
        version in the ledger, so a rerun does not repeat an attention item."""
        if item.call.action == "watch":
            return "watch"
        if self.recorder is None:
            return "skipped"
        if self.recorder.report(item, item.args.get("message")) and \
                item.args.get("level") == "attention":
            self.summary.note("attention", str(item.args.get("message")))
        return "reported"
