"""What a run makes of its batches' members once they end: counted, watched, or evaluated again.

A batched action (`connector.execute.batch`) ends after its order was evaluated: when the
batch is flushed at the end of the run, swept while it waits, or resumed by a later run. Each
member that ends is then counted in the run's summary as a single action's outcome would be,
and its order goes where it must be read from next:
- done: evaluated again now when it can take another step (its action's `follow_up`, or
  later actions of the order that waited for it); else off the watch list, if it was on it
  (watched after an earlier failure, it would otherwise be read again every run);
- refused: stale when a fresh plan no longer calls for it (evaluated again from the fresh
  read), else failed and watched;
- released (its batch ended before its effect, or the effect was settled as not in flight):
  watched, so that the next run re-plans it and sends it again only if still called for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector import observe
from connector.execute import DONE, FAILED, PARKED, UNKNOWN, Outcome
from connector.execute.batch import RETRY, Batcher, MemberResult
from connector.plan import Planned
from connector.record import Recorder
from connector.replan import Replanner
from connector.summary import Summary


@dataclass(frozen=True)
class BatchedMembers:
    """The batches of one flow partition's run, and its bookkeeping of their members."""

    batcher: Batcher
    summary: Summary
    recorder: Recorder
    replanner: Replanner
    #: the run's watched orders (shared with the run, not a copy)
    watching: set[str]
    #: evaluates an order again (the run's `process_normalised`)
    evaluate: Callable[[dict[str, Any]], None]
    #: puts an order on the watch list, once per run (the run's `_watch`)
    watch: Callable[[str, dict[str, Any]], None]
    #: how often a flush goes round again (members re-planned after a stale refusal)
    rounds: int
    #: batched actions with later actions of their order, evaluated once the batch is done
    continues: set[str] = field(default_factory=set)

    def gather(self, item: Planned) -> Outcome:
        """Hold a batched action for the flush (or say why it is not sent)."""
        return self.batcher.gather(item)

    def resume(self) -> None:
        """Where earlier runs left their batches, before the watch list is read: members
        released now join it."""
        self.ended(self.batcher.resume())

    def flush(self) -> None:
        """Send the batches the orders gathered, sweep the waiting ones, and say which
        members still wait for the remote side when the run ends."""
        for _round in range(self.rounds):  # a stale member re-planned may gather again
            if not self.batcher.gathered:
                break
            self.ended(self.batcher.flush() + self.batcher.sweep())
        for result in self.batcher.waiting():
            self.summary.tally("waiting", result.order_id, result.message,
                               what=f"{result.action} [{result.rule}]")

    def ended(self, results: list[MemberResult]) -> None:
        """Each finished member of a batch, as a single action's outcome would be counted;
        an order that must be read again (failed, released, or able to take another step)
        goes on the watch list or is evaluated again now."""
        for result in results:
            what = f"{result.action} [{result.rule}]"
            with observe.bound(order=result.order_id, rule=result.rule, action=result.action,
                               key=result.key):
                # the time is the batch's, spent once for all its members (in its batch.* events)
                observe.emit("action.end", logging.WARNING if result.status in (FAILED, UNKNOWN, PARKED)
                             else logging.INFO, outcome=result.status, message=result.message or None,
                             batched=True, duration_seconds=0.0)
            if result.status == DONE:
                self.summary.add(done=1)
                if (result.follows or result.key in self.continues) and result.source:
                    # later actions of the order, or a step its action may lead to: now
                    self.continues.discard(result.key)
                    self.evaluate(dict(result.source))
                elif result.order_id in self.watching:
                    # done with it: a member watched after an earlier failure is not read again
                    self.recorder.unwatch(result.order_id)
            elif result.status == FAILED:
                fresh = self._stale(result)
                if fresh is not None:
                    self.summary.tally("skipped", result.order_id, "the order changed after it "
                                       f"was planned ({result.message})", what=what)
                    self.evaluate(fresh)
                    continue
                self.summary.tally("failed", result.order_id, result.message, what=what)
                self.watch(result.order_id, {"reason": FAILED})
            elif result.status == UNKNOWN:
                self.summary.tally("unknown", result.order_id, result.message, what=what)
            elif result.status == PARKED:
                self.summary.add(parked=1)
                self.summary.note("attention", f"{result.order_id}: {what}: {result.message}")
            elif result.status == RETRY:
                self.watch(result.order_id, {"reason": "re-plan: " + result.message})

    def _stale(self, result: MemberResult) -> dict[str, Any] | None:
        """A refused member, as the engine tells a refused single action: stale when a
        fresh plan no longer has its key."""
        if not result.refused or result.source is None:
            return None
        return self.replanner.stale(result.system, result.key, dict(result.source))
