"""The pipeline for one flow: fetch → normalise → look up → evaluate → plan → execute → record.

Orders are processed concurrently (bounded), each order's actions in order. After an action
that can lead to another step (its `follow_up`) the rules are evaluated again (bounded), so
two-step transitions such as VTEX's `cancellation-requested` finish in one run; the
counterpart is read again only when such an action was sent to a system other than the
source (a read of the source's shipments leaves it as it was); an action that cannot lead
to another step costs no re-read. An order that waits for
its counterpart, or whose action failed, goes on the watch list and is re-read on later runs;
the cursor then advances past every order, because each is recorded one way or the other.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connector import observe
from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError
from connector.execute import (
    ALREADY, DEFERRED, DONE, FAILED, PARKED, QUEUED, UNKNOWN, WAITING, Outcome, RetryAcrossRuns,
    execute, follows, summary,
)
from connector.execute_batch import RETRY, Batcher, MemberResult
from connector.fetch import Window, get_order, iso, list_changed, window
from connector.lookup import find_counterpart
from connector.normalise import normalise
from connector.plan import FlowRuntime, Planned, plan_order
from connector.notify.queued import take_queued
from connector.state.store import RunRecord, StateStore
from connector.summary import Summary


@dataclass(frozen=True)
class RunOptions:
    since: str | None = None
    limit: int | None = None
    dry_run: bool = False  # plan: read only, nothing sent or recorded
    concurrency: int = 8
    max_reevaluations: int = 3
    #: A write whose outcome is unknown (5xx, timeout, dropped connection) is settled in the
    #: run: after `settle_seconds` (× poll_scale) the order is read again and re-planned, at
    #: most `settle_attempts` times per order; the rest is left for the next run.
    settle_attempts: int = 2
    settle_seconds: float = 2.0
    lookback_hours: float = 24.0
    watch_hours: float = 48.0
    poll_scale: float = 1.0
    partition: str = ""  # e.g. a marketplace id: its own cursor and watch list
    #: `--order ID`: read and evaluate these orders now instead of listing changes; the
    #: cursor, the watch list's other orders and the queue are left for the scheduled runs.
    orders: tuple[str, ...] = ()
    retry: RetryAcrossRuns = RetryAcrossRuns()
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str, int, int], None] = lambda flow, done, total: None


#: An action the remote system refused (4xx, `fail_if`): stale plan or real failure.
REFUSED = "refused"


def _where(item: Planned) -> str:
    return f"{_order_of(item)}: {item.name} [{item.rule.id}]"


def _order_of(item: Planned) -> str:
    return str(item.context["source"].get("id"))


def _ended(item: Planned, outcome: str, message: str, started: float, **more: Any) -> None:
    """The `action.end` event: the action's outcome as the summary counts it, and timing."""
    level = logging.WARNING if outcome in (FAILED, UNKNOWN, PARKED) else logging.INFO
    with observe.bound(rule=item.rule.id, action=item.name, key=item.key):
        observe.emit("action.end", level, outcome=outcome, message=message or None,
                     reasons=list(item.reasons) or None,
                     duration_seconds=round(time.monotonic() - started, 3), **more)


def flow_key(flow: str, partition: str = "") -> str:
    """The state-store key of a flow's cursor and watch list, per partition."""
    return f"{flow}@{partition}" if partition else flow


def _outputs(store: StateStore | None, flow: str, order_id: str) -> dict[str, Any]:
    """Earlier actions' outputs for the order, by bare action name (`reserve_stock`)."""
    if store is None:
        return {}
    return {name.split(".", 1)[-1]: values for name, values in store.outputs(flow, order_id).items()}


#: Orders evaluated at a time while the listing streams in: enough to keep the pool busy,
#: few enough that memory holds a page or two, not the listing.
CHUNK = 256


class FlowRun:
    def __init__(self, runtime: FlowRuntime, clients: dict[str, SystemClient],
                 store: StateStore | None, options: RunOptions) -> None:
        self.runtime = runtime
        self.flow = runtime.flow
        self.source = clients[runtime.flow.source]
        self.target = clients[runtime.flow.target]
        self.clients = clients
        self.store = store
        self.options = options
        self.summary = Summary(runtime.flow.name)
        self.now = options.now()
        self.now_iso = iso(self.now)
        self.watching: set[str] = set()
        self._continues: set[str] = set()  # batched actions with later actions of their order
        self._bound: dict[str, Any] = {}
        # Cursor and watch list are per partition (flow × source account/marketplace).
        self.key = flow_key(runtime.flow.name, options.partition)
        self.batcher = Batcher(runtime, clients, store, flow_key=self.key,
                               partition=options.partition, poll_scale=options.poll_scale,
                               retry=options.retry, clock=options.now, sleep=options.sleep) \
            if store is not None and not options.dry_run else None

    def run(self) -> Summary:
        """Run the flow partition, holding its lock in the store for the whole run so that
        two processes (an overlapping cron run, two workers) never act on one order; a
        whole-flow run excludes every partition run of the flow and the reverse. `Busy` if
        another process holds it. The lock dies with its holder, and a crashed run's pending
        entries are settled here by re-planning, as after any crash."""
        run_id = observe.context().get("run") or uuid.uuid4().hex[:12]
        with observe.bound(run=run_id, flow=self.flow.name, partition=self.options.partition):
            self._bound = dict(observe.context())  # for the pool's threads
            if self.store is None or self.options.dry_run:
                return self._observed()
            within = self.flow.name if self.options.partition else None
            with self.store.lock(self.key, within=within):
                return self._observed()

    def _observed(self) -> Summary:
        """`_run` between its `flow.start` and `flow.end` events (with the counts, the
        run's duration, and the partition's watched orders and parked actions now)."""
        started = time.monotonic()
        observe.emit("flow.start", mode="plan" if self.options.dry_run else "apply")
        try:
            summary = self._run()
        except Exception as exc:
            observe.emit("flow.end", logging.ERROR, outcome="error",
                         error=self.runtime.redact(str(exc)),
                         duration_seconds=round(time.monotonic() - started, 3))
            raise
        s = summary
        counts = {"orders": s.orders, "done": s.done, "already": s.already,
                  "skipped": s.skipped, "failed": s.failed, "unknown": s.unknown,
                  "watched": s.watched, "parked": s.parked, "deferred": s.deferred,
                  "waiting": s.waiting}
        if self.store is not None and observe.active():
            counts["watching_now"] = len(self.store.watched(self.key, self.now_iso))
            counts["parked_now"] = len(self.store.entries(self.flow.name, "parked"))
        outcome = "failed" if s.failed or s.unknown or s.errors else "ok"
        if self.store is not None and not self.options.dry_run and not self.options.orders:
            # the partition's last run, for `connector status` (an --order run is not one)
            self.store.record_run(RunRecord(
                self.flow.name, self.options.partition, self.now_iso,
                round(time.monotonic() - started, 3), outcome, counts))
        observe.emit("flow.end", outcome=outcome,
                     window=[s.window.after, s.window.before] if s.window else None,
                     duration_seconds=round(time.monotonic() - started, 3),
                     errors=list(s.errors), attention=list(s.attention), **counts)
        return summary

    def _run(self) -> Summary:
        if self.options.orders:
            return self._run_orders()
        store, flow = self.store, self.flow
        if self.batcher is not None:  # before the watch list is read: released ones join it
            self._batched(self.batcher.resume())
        cursor = store.get_cursor(self.key) if store else None
        listing = self.source.system.listing
        min_age = listing.min_age_seconds if listing else 0
        span = window(cursor, self.options.since, self.now, self.options.lookback_hours, min_age)
        self.summary.window = span
        # Streamed: the listing's orders are evaluated a chunk at a time as its pages come
        # in, so memory holds one chunk, not the whole listing (100,000 orders used to be
        # read in full first). An order listed twice (it changed while pages were read) is
        # evaluated once; its newer change is past the window, for the next run.
        watched = [order_id for order_id, _ in store.watched(self.key, self.now_iso)] if store else []
        self.watching.update(watched)  # before any order is evaluated: they leave the list
        known: dict[str, dict[str, Any] | None] = {}  # every order of the run by id; raw: not listed
        listed = 0
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            def evaluate(chunk: list[dict[str, Any]]) -> None:
                for _ in pool.map(self.process_normalised, chunk):
                    self.summary.orders += 1
                    self.options.progress(flow.name, self.summary.orders, max(listed, self.summary.orders))

            chunk: list[dict[str, Any]] = []
            for raw in list_changed(self.source, span, self.options.limit):
                listed += 1
                order = normalise(self.source.system, raw)
                if str(order["id"]) not in known:
                    known[str(order["id"])] = None
                    chunk.append(order)
                if len(chunk) >= CHUNK:
                    evaluate(chunk)
                    chunk = []
            evaluate(chunk)
            # Cut short by --limit: the orders past the limit are not recorded anywhere, so
            # the cursor must not move past them (the next run lists them again).
            truncated = self.options.limit is not None and listed >= self.options.limit
            for order_id in watched:
                if order_id not in known:
                    try:
                        known[order_id] = get_order(self.source, order_id)
                    except (HTTPError, ConnectorError) as exc:
                        self.summary.tally("failed", order_id, f"watched, but reading it failed: {exc}")
            queued = (take_queued(store, self.source, self.flow.name, self.options.partition,
                                  known, self.summary) if store is not None else [])
            evaluate([normalise(self.source.system, raw) for raw in known.values() if raw is not None])
        self._flush()
        if store is not None and not self.options.dry_run:
            for item in queued:  # each is recorded (done, failed-and-watched, or watched)
                store.dequeue(item)
        if store is not None and not self.options.dry_run and self.options.since is None \
                and not truncated:
            # Every order is recorded (done, failed-and-watched, or watched): move on.
            store.set_cursor(self.key, span.before)
        return self.summary

    def _run_orders(self) -> Summary:
        """`--order ID`: each order read by id and evaluated now, whatever the cursor says
        (the runner lifts the retry backoff too); one the source does not know is skipped."""
        records: dict[str, dict[str, Any]] = {}
        for order_id in self.options.orders:
            raw = get_order(self.source, order_id)
            if raw is None:
                self.summary.tally("skipped", order_id,
                                   f"{self.flow.source} does not know the order")
            else:
                records[order_id] = raw
        if self.store is not None:  # so that an order that goes through leaves the list
            self.watching = {order_id for order_id, _ in self.store.watched(self.key, self.now_iso)
                             if order_id in records}
        self.summary.orders = len(records)
        for raw in records.values():
            self.process(raw)
        self._flush()
        return self.summary

    def process(self, raw: dict[str, Any]) -> None:
        self.process_normalised(normalise(self.source.system, raw))

    def process_normalised(self, order: dict[str, Any]) -> None:
        order_id = str(order["id"])
        with observe.bound(**self._bound, order=order_id):
            try:
                self._process(order)
            except (HTTPError, ConnectorError) as exc:
                message = self.runtime.redact(str(exc))
                self.summary.tally("failed", order_id, message)
                observe.emit("order.error", logging.WARNING, error=message)
                self._watch(order_id, {"reason": "error", "error": message})

    def _process(self, order: dict[str, Any]) -> None:
        flow, store = self.flow, self.store
        order_id = str(order["id"])
        watch_hours: float | None = None  # the longest `watch: {hours}` the rules asked for
        settles = self.options.settle_attempts
        target: dict[str, Any] | None = None
        reread = True  # the counterpart is read in the first round, and again only after
        # an action that may have changed it: one on the source system (a read of the
        # order's shipments) leaves the counterpart as it was read
        for _round in range(self.options.max_reevaluations + settles + 1):
            if reread:
                target = find_counterpart(self.target, flow.source, order)
            reread = False
            outputs = _outputs(store, flow.name, order_id)
            planned, decision = plan_order(self.runtime, order, target, outputs, self.now_iso)
            observe.emit("order.evaluated", round=_round, status=order.get("status"),
                         counterpart=(target or {}).get("id"),
                         rules=[rule.id for rule in decision.matched],
                         actions=[item.name for item in planned])
            acted = False
            for item in planned:
                if self.options.dry_run:
                    self.summary.planned.append((order_id, item))
                    observe.emit("action.planned", rule=item.rule.id, action=item.name,
                                 key=item.key, runs=item.runnable,
                                 reasons=list(item.reasons) or None)
                    continue
                started = time.monotonic()
                result, message = self._act(item)
                if result == REFUSED:
                    fresh = self._stale(item, order)
                    _ended(item, FAILED if fresh is None else "skipped", message, started,
                           stale=fresh is not None)
                    if fresh is None:
                        self._failed(item, message)
                        result = FAILED
                    else:
                        # Refused because the order changed after this plan was made (a
                        # person or another system acted): skipped, and the order evaluated
                        # again from the fresh read, which no longer calls for it.
                        self.summary.tally("skipped", order_id,
                                          f"the order changed after it was planned ({message})",
                                          item)
                        order, acted, reread = fresh, True, True
                        break
                if result == UNKNOWN:
                    settled = self._settle(item, order) if settles > 0 else None
                    settles -= 1
                    if settled is None:
                        self.summary.tally("unknown", order_id, message, item)
                        self._watch(order_id, {"reason": UNKNOWN})
                        return
                    # settled by reading: evaluated again from the fresh read, which sends
                    # again (same key) only what it still calls for
                    order, acted, reread = settled, True, True
                    break
                if result in (QUEUED, WAITING):
                    if result == QUEUED and item is not planned[-1]:
                        self._continues.add(item.key)  # once its batch is done
                    return  # its batch reports it; later actions wait for it
                if result == "watch":
                    watch_hours = max(watch_hours or 0.0, self._hours(item))
                elif result == DONE and follows(item):
                    acted = True
                    reread = reread or item.system != flow.source
                elif result in (FAILED, DEFERRED):
                    # Later actions of the order wait: they may depend on this one.
                    self._watch(order_id, {"reason": result})
                    return
                elif result == PARKED:
                    return
            if not acted or self.options.dry_run:
                break
        else:
            # Still acting (or re-evaluating a stale plan) when the rounds ran out: the
            # order is looked at again next run, not left behind by the cursor.
            self._watch(order_id, {"reason": "re-evaluate"})
            return
        if store is not None and not self.options.dry_run:
            if watch_hours is not None:
                self._watch(order_id, {"reason": "waiting for the counterpart"}, watch_hours)
            elif order_id in self.watching:
                store.unwatch(self.key, order_id)

    def _hours(self, item: Planned) -> float:
        """A `watch` action's `hours` (the flow's watch_hours when absent or not a number)."""
        try:
            hours = float(item.args.get("hours") or self.options.watch_hours)
        except (TypeError, ValueError):
            hours = self.options.watch_hours
        return hours if 0 < hours < 1e6 else self.options.watch_hours  # NaN, inf: the default

    def _watch(self, order_id: str, payload: dict[str, Any], hours: float | None = None) -> None:
        if self.store is None or self.options.dry_run:
            return
        if order_id in self.watching:
            return  # keep the first deadline: re-watching every run would never expire
        until = iso(self.now + timedelta(hours=hours or self.options.watch_hours))
        self.store.watch(self.key, order_id, until, json.dumps(payload))
        observe.emit("order.watched", until=until, reason=payload.get("reason"))
        self.watching.add(order_id)
        self.summary.tally("watched", order_id, f"{payload.get('reason')}, until {until}")

    def _act(self, item: Planned) -> tuple[str, str]:
        """Run one planned action: (its status, its failure message). A refusal (a 4xx, a
        `fail_if`) comes back as REFUSED, uncounted: the caller tells a stale plan from a
        real failure."""
        with observe.bound(rule=item.rule.id, action=item.name, key=item.key):
            started = time.monotonic()
            status, message = self._act_counted(item)
            if status != REFUSED:  # told by the caller, once it knows stale from failed
                _ended(item, status, message, started)
            return status, message

    def _act_counted(self, item: Planned) -> tuple[str, str]:
        store = self.store
        if store is None:
            raise ConnectorError("apply needs a state store")
        if item.action is None:
            return self._builtin(item), ""
        if not item.runnable:
            self.summary.tally("skipped", _order_of(item), "; ".join(map(str, item.reasons)),
                              item)
            return "skipped", ""
        client = self.clients[item.system]
        outcome: Outcome
        if item.action.batch is not None and self.batcher is not None:
            outcome = self.batcher.gather(item)
        else:
            outcome = execute(client, item, store, sleep=self.options.sleep,
                              poll_scale=self.options.poll_scale, retry=self.options.retry,
                              now=self.now, partition=self.options.partition)
        if outcome.status in (QUEUED, WAITING):
            return outcome.status, outcome.message
        if outcome.status == PARKED:
            # Said once, when it is parked; then left to a person, not a failure every run.
            if outcome.fresh:
                self.summary.note("attention", f"{_where(item)}: {outcome.message}")
            self.summary.add(parked=1)
            return PARKED, outcome.message
        if outcome.status == DEFERRED:
            self.summary.add(deferred=1)
            return DEFERRED, outcome.message
        if outcome.status == FAILED:
            if not outcome.retryable:
                return REFUSED, outcome.message
            self._failed(item, outcome.message)
            return FAILED, outcome.message
        if outcome.status != UNKNOWN:  # told by the caller, once settling has had its say
            self.summary.add(**{"done" if outcome.status == DONE else "already": 1})
        return outcome.status, outcome.message

    def _flush(self) -> None:
        """Send the batches the orders gathered, sweep the waiting ones, and say which
        members still wait for the remote side when the run ends."""
        if self.batcher is None:
            return
        for _round in range(self.options.max_reevaluations + 1):  # a stale member re-planned
            if not self.batcher.gathered:
                break
            self._batched(self.batcher.flush() + self.batcher.sweep())
        for result in self.batcher.waiting():
            self.summary.tally("waiting", result.order_id, result.message,
                               what=f"{result.action} [{result.rule}]")

    def _batched(self, results: list[MemberResult]) -> None:
        """Each finished member of a batch, as a single action's outcome would be counted;
        an order that must be read again (failed, released, or able to take another step)
        goes on the watch list."""
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
                if (result.follows or result.key in self._continues) and result.source:
                    # later actions of the order, or a step its action may lead to: now
                    self._continues.discard(result.key)
                    self.process_normalised(dict(result.source))
                elif result.order_id in self.watching and self.store is not None:
                    # done with it: a member watched after an earlier failure is not read again
                    self.store.unwatch(self.key, result.order_id)
            elif result.status == FAILED:
                fresh = self._stale_member(result)
                if fresh is not None:
                    self.summary.tally("skipped", result.order_id, "the order changed after it "
                                       f"was planned ({result.message})", what=what)
                    self.process_normalised(fresh)
                    continue
                self.summary.tally("failed", result.order_id, result.message, what=what)
                self._watch(result.order_id, {"reason": FAILED})
            elif result.status == UNKNOWN:
                self.summary.tally("unknown", result.order_id, result.message, what=what)
            elif result.status == PARKED:
                self.summary.add(parked=1)
                self.summary.note("attention", f"{result.order_id}: {what}: {result.message}")
            elif result.status == RETRY:
                self._watch(result.order_id, {"reason": "re-plan: " + result.message})

    def _failed(self, item: Planned, message: str) -> None:
        self.summary.tally("failed", _order_of(item), message, item)

    def _stale_member(self, result: MemberResult) -> dict[str, Any] | None:
        """A refused batch member, as `_stale` tells a refused single action."""
        if not result.refused or result.source is None:
            return None
        replanned = self._replan_key(result.system, result.key, dict(result.source))
        return None if replanned is None or replanned[1] else replanned[0]

    def _replan(self, item: Planned, order: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        """Read the order `item` acted on again (the source too when `item` acted on it)
        and plan afresh: (the source order, whether the fresh plan still has `item`'s key).
        None when a read fails."""
        return self._replan_key(item.system, item.key, order)

    def _replan_key(self, system: str, key: str, order: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        try:
            fresh = order
            if system == self.flow.source != self.flow.target:
                raw = get_order(self.source, str(order["id"]))
                if raw is not None:
                    fresh = normalise(self.source.system, raw)
            target = find_counterpart(self.target, self.flow.source, fresh)
            outputs = _outputs(self.store, self.flow.name, str(order["id"]))
            planned, _ = plan_order(self.runtime, fresh, target, outputs, self.now_iso)
        except (HTTPError, ConnectorError):
            return None
        return fresh, any(p.key == key for p in planned)

    def _stale(self, item: Planned, order: dict[str, Any]) -> dict[str, Any] | None:
        """After `item` was refused: when the fresh plan no longer has its key, the refusal
        answered a state the plan had not seen (stale); return the source order to evaluate
        again. None when the fresh plan still calls for it (a real failure) or a read fails."""
        replanned = self._replan(item, order)
        return None if replanned is None or replanned[1] else replanned[0]

    def _settle(self, item: Planned, order: dict[str, Any]) -> dict[str, Any] | None:
        """After `item`'s outcome was unknown: wait briefly, read again and re-plan. When the
        fresh plan no longer has its key, its effect is there (or no longer wanted): the
        entry is `settled`. When it still has it, the effect is not there and the caller's
        next round sends it again under the same key. Either way the fresh source order is
        returned; None when the read fails (the next run settles it)."""
        seconds = self.options.settle_seconds * self.options.poll_scale
        observe.emit("action.settle_wait", seconds=seconds)
        self.options.sleep(seconds)
        replanned = self._replan(item, order)
        if replanned is None:
            return None
        fresh, still_called_for = replanned
        if self.store is not None and not still_called_for:
            self.store.settle(item.key, "settled by reading: a fresh read of the order no "
                                        "longer calls for it")
        self.summary.add(settled=1)
        observe.emit("action.settled", resend=still_called_for)
        return fresh

    def _builtin(self, item: Planned) -> str:
        """`watch` asks the caller to watch the order; `report` is recorded once per order
        version in the ledger, so a rerun does not repeat an attention item."""
        if item.call.action == "watch":
            return "watch"
        store = self.store
        if store is None:
            return "skipped"
        source_id = str((item.context.get("source") or {}).get("id") or item.context.get("id") or "?")
        entry = store.begin(item.key, flow=item.flow, order_id=source_id, action="report",
                            summary=summary(item), partition=self.options.partition)
        if entry.new:
            store.complete(item.key, {"message": item.args.get("message")})
            if item.args.get("level") == "attention":
                self.summary.note("attention", str(item.args.get("message")))
        return "reported"
