"""The pipeline for one flow: fetch → normalise → look up → evaluate → plan → execute → record.

Orders are processed concurrently (bounded), each order's actions in order. After an action
that can lead to another step (its `follow_up`) the rules are evaluated again (bounded), so
two-step transitions such as VTEX's `cancellation-requested` finish in one run; the
counterpart is read again only when such an action was sent to a system other than the
source (a read of the source's shipments leaves it as it was); an action that cannot lead
to another step costs no re-read. An order that waits for
its counterpart, or whose action failed, goes on the watch list and is re-read on later runs;
the cursor then advances past every order, because each is recorded one way or the other.

This module is the orchestration; the stages' work is elsewhere: one action is sent and
counted by `connector.dispatch`, a batch's members by `connector.execute.batch_outcomes`, a stale or
unknown outcome re-planned by `connector.replan`, and every write to the state store (ledger,
watch list, cursor, run record) made by `connector.record`.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from connector import fence, observe, stopping
from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError, LeaseLost
from connector.execute.batch_outcomes import BatchedMembers
from connector.dispatch import REFUSED, Dispatcher, ended
from connector.execute import (
    DEFERRED, DONE, FAILED, PARKED, QUEUED, UNKNOWN, WAITING, follows, effect_found,
)
from connector.execute.batch import Batcher
from connector.fetch import Recent, get_order, iso, list_changed, window
from connector.lookup import find_counterpart
from connector.normalise import normalise, order_id as listed_id
from connector.plan import FlowRuntime, Planned, plan_order
from connector.notify.queued import take_queued
from connector.record import Recorder
from connector.replan import Replanner, earlier_outputs
from connector.run_options import RunOptions  # re-exported: callers import it from here
from connector.fence import Fence
from connector.state.leases import owner_name
from connector.state.store import RunRecord, StateStore
from connector.stale import StalePending
from connector.summary import Summary


def flow_key(flow: str, partition: str = "") -> str:
    """The state-store key of a flow's cursor and watch list, per partition."""
    return f"{flow}@{partition}" if partition else flow


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
        # The run's view of the store: its writes check the run's lease (connector.fence).
        self.fence = Fence()
        if store is not None and not options.dry_run:
            store = store.fenced(self.fence)
        self.store = store
        self.options = options
        self.summary = Summary(runtime.flow.name)
        self.now = options.now()
        self.now_iso = iso(self.now)
        self.watching: set[str] = set()
        self.stopped = False  # the worker is stopping: orders were left for the next run
        self.stale = StalePending()  # loaded as the run begins (connector.stale)
        self._bound: dict[str, Any] = {}
        # Cursor and watch list are per partition (flow × source account/marketplace).
        self.key = flow_key(runtime.flow.name, options.partition)
        self.replanner = Replanner(runtime, self.source, self.target, store, self.now_iso)
        # Every write of the run goes through the record stage; a plan records nothing.
        self.recorder = Recorder(store, flow_key=self.key, partition=options.partition) \
            if store is not None and not options.dry_run else None
        self.batches = BatchedMembers(
            Batcher(runtime, clients, self.recorder.store, flow_key=self.key,
                    partition=options.partition, poll_scale=options.poll_scale,
                    retry=options.retry, clock=options.now, sleep=options.sleep),
            self.summary, self.recorder, self.replanner, self.watching,
            evaluate=self.process_normalised, watch=self._watch,
            rounds=options.max_reevaluations + 1) if self.recorder is not None else None
        self.dispatch = Dispatcher(clients, store, self.recorder, self.batches, self.summary,
                                   self.now, options.partition, options.retry,
                                   options.poll_scale, options.sleep)

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
                # The lease, after the lock: a process that lost its lock's session without
                # noticing is fenced off from here on (its next write or request fails).
                lease = self.store.take_lease(self.key, owner_name(run_id))
                try:
                    with fence.active(self.fence):
                        return self._observed()
                finally:  # its threads have ended: nothing of this run is in flight
                    self.store.release_lease(lease)

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
        if self.recorder is not None and not self.options.orders:
            # the partition's last run, for `connector status` (an --order run is not one)
            self.recorder.run(RunRecord(
                self.flow.name, self.options.partition, self.now_iso,
                round(time.monotonic() - started, 3), outcome, counts))
        observe.emit("flow.end", outcome=outcome,
                     window=[s.window.after, s.window.before] if s.window else None,
                     duration_seconds=round(time.monotonic() - started, 3),
                     errors=list(s.errors), attention=list(s.attention), **counts)
        return summary

    def _run(self) -> Summary:
        self.stale = StalePending.load(self.store if self.recorder else None, self.flow.name)
        if self.options.orders:
            return self._run_orders()
        store, flow = self.store, self.flow
        if self.batches is not None:  # before the watch list is read: released ones join it
            self.batches.resume()
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
        # Remembered by id: only the orders to be read by id unless the listing brings them
        # (watched, queued by a notification), so that memory does not grow with the
        # listing; an order listed twice is skipped while among the last ids listed (fetch).
        recent = Recent()
        wanted = set(watched) | ({q.order_id for q in store.queued(flow.name, self.options.partition or None)}
                                 if store is not None else set())
        known: dict[str, dict[str, Any] | None] = {}  # those orders by id; raw: not listed
        listed = 0
        with ThreadPoolExecutor(max_workers=max(1, self.options.concurrency)) as pool:
            def evaluate(chunk: list[dict[str, Any]]) -> None:
                for evaluated in pool.map(self._unless_stopping, chunk):
                    if not evaluated:
                        continue
                    self.summary.orders += 1
                    self.options.progress(flow.name, self.summary.orders, max(listed, self.summary.orders))

            chunk: list[dict[str, Any]] = []
            for raw in list_changed(self.source, span, self.options.limit):
                if stopping.requested():  # the worker stops: no more orders, cursor kept
                    self.stopped = True
                    break
                listed += 1
                ident = str(listed_id(self.source.system, raw))
                if ident in recent:  # listed twice: skipped before it is normalised again
                    continue
                recent.add(ident)
                if ident in wanted:
                    known[ident] = None
                chunk.append(normalise(self.source.system, raw))
                if len(chunk) >= CHUNK:
                    evaluate(chunk)
                    chunk = []
            evaluate(chunk)
            # Cut short by --limit: the orders past the limit are not recorded anywhere, so
            # the cursor must not move past them (the next run lists them again).
            truncated = self.options.limit is not None and listed >= self.options.limit
            for order_id in watched if not self.stopped else ():
                if order_id not in known:
                    try:
                        known[order_id] = get_order(self.source, order_id)
                    except LeaseLost:
                        raise
                    except (HTTPError, ConnectorError) as exc:
                        self.summary.tally("failed", order_id, f"watched, but reading it failed: {exc}")
            queued = (take_queued(store, self.source, self.flow.name, self.options.partition,
                                  known, self.summary) if store is not None
                      and not self.stopped else [])
            evaluate([normalise(self.source.system, raw) for raw in known.values() if raw is not None])
        if self.batches is not None:
            self.batches.flush()
        if self.recorder is not None:
            for item in queued:  # each is recorded (done, failed-and-watched, or watched)
                self.recorder.dequeued(item)
            if self.options.since is None and not truncated and not self.stopped:
                # Every order is recorded (done, failed-and-watched, or watched): move on.
                self.recorder.cursor(span.before)
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
            self.watching.update(order_id for order_id, _ in self.store.watched(self.key, self.now_iso)
                                 if order_id in records)
        self.summary.orders = len(records)
        for raw in records.values():
            self.process(raw)
        if self.batches is not None:
            self.batches.flush()
        return self.summary

    def _unless_stopping(self, order: dict[str, Any]) -> bool:
        """Evaluate the order, unless the worker is stopping: a safe point is between two
        orders, and an order not begun is listed again by the next run (the cursor stays)."""
        if stopping.requested():
            self.stopped = True
            return False
        self.process_normalised(order)
        return True

    def process(self, raw: dict[str, Any]) -> None:
        self.process_normalised(normalise(self.source.system, raw))

    def process_normalised(self, order: dict[str, Any]) -> None:
        order_id = str(order["id"])
        with observe.bound(**self._bound, order=order_id), fence.active(self.fence):
            try:
                self._process(order)
            except LeaseLost:
                raise  # the run stops; nothing more is recorded or sent
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
            outputs = earlier_outputs(store, flow.name, order_id)
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
                result, message = self.dispatch.act(item)
                if result == REFUSED:
                    fresh = self.replanner.stale(item.system, item.key, order)
                    ended(item, FAILED if fresh is None else "skipped", message, started,
                          stale=fresh is not None)
                    if fresh is None:
                        self.dispatch.failed(item, message)
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
                    if result == QUEUED and item is not planned[-1] and self.batches is not None:
                        self.batches.continues.add(item.key)  # once its batch is done
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
        if self.recorder is not None:
            # Pending entries of the order that this last plan no longer has (connector.stale)
            self.stale.settle(order_id, [item.key for item in planned], store, self.recorder)
            if watch_hours is not None:
                self._watch(order_id, {"reason": "waiting for the counterpart"}, watch_hours)
            elif order_id in self.watching:
                self.recorder.unwatch(order_id)

    def _hours(self, item: Planned) -> float:
        """A `watch` action's `hours` (the flow's watch_hours when absent or not a number)."""
        try:
            hours = float(item.args.get("hours") or self.options.watch_hours)
        except (TypeError, ValueError):
            hours = self.options.watch_hours
        return hours if 0 < hours < 1e6 else self.options.watch_hours  # NaN, inf: the default

    def _watch(self, order_id: str, payload: dict[str, Any], hours: float | None = None) -> None:
        if self.recorder is None:
            return
        if order_id in self.watching:
            return  # keep the first deadline: re-watching every run would never expire
        until = iso(self.now + timedelta(hours=hours or self.options.watch_hours))
        self.recorder.watch(order_id, until, payload)
        observe.emit("order.watched", until=until, reason=payload.get("reason"))
        self.watching.add(order_id)
        self.summary.tally("watched", order_id, f"{payload.get('reason')}, until {until}")

    def _settle(self, item: Planned, order: dict[str, Any]) -> dict[str, Any] | None:
        """After `item`'s outcome was unknown: wait briefly, read again and re-plan. When the
        fresh plan no longer has its key, its effect is there (or no longer wanted): the
        entry is `settled`. When it still has it, the effect is not there and the caller's
        next round sends it again under the same key. Either way the fresh source order is
        returned; None when the read fails (the next run settles it)."""
        seconds = self.options.settle_seconds * self.options.poll_scale
        observe.emit("action.settle_wait", seconds=seconds)
        self.options.sleep(seconds)
        replanned = self.replanner.replan(item.system, item.key, order)
        if replanned is None:
            return None
        fresh, still_called_for = replanned
        if still_called_for and self.recorder is not None:
            # An effect the order cannot show (a reservation) is read itself, if declared.
            found = effect_found(self.clients[item.system], item, self.recorder)
            if found is None:
                return None  # its read failed: left pending, the next run reads it again
            if found:
                self.summary.add(settled=1)
                return fresh  # evaluated again with its outputs: no longer called for
        if self.recorder is not None:
            # Either way it is pending no more: a fresh read says whether it is still to do
            # (then the next round sends it again, under the same key).
            self.recorder.settled(item.key, "settled by reading: a fresh read of the order "
                                  + ("still calls for it: sent again" if still_called_for
                                     else "no longer calls for it"))
        self.summary.add(settled=1)
        observe.emit("action.settled", resend=still_called_for)
        return fresh
