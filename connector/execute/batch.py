"""Stage 8, execute, for batched actions: gathered across a run's orders, sent once, and
waited for without sleeping.

An action with a `batch:` (Amazon's cancellation: one POST_ORDER_ACKNOWLEDGEMENT_DATA feed
with one message per order) is not sent while its order is evaluated: its intent is recorded
(`pending`) and the planned action gathered. Once every order is evaluated, each group of
gathered actions (`group_by`, at most `max_orders`) becomes one batch, recorded (through
`connector.record`) with its members before its first request. Each member's outcome is then
read from the result (`errors`: the processing report's per-message errors).

Exactly-once per member rests on where the stored batch stands when a run dies:
- `open` (before the `effect` step): nothing happened; the members are released and re-planned.
- `sending` / `unknown` (the effect step sent, no answer recorded): the `recover` step
  (a poll: the feeds created since the batch opened) is sent until nothing the effect may
  have started is in flight; then the members are re-planned from fresh reads, and only a
  member whose order still calls for the action is sent again, in a new batch. Without a
  `recover` step the members are re-planned at once, as a single action's would be.
- `waiting` (the effect done, a poll not yet satisfied): checked again by a later sweep of
  this run or by the next run; a member's order met meanwhile waits (`batch_of`).
A poll never sleeps in the run, except for an interval under a second (the sandbox's scaled
ones): a batch that is not ready is left `waiting` with the time of its next check.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connector import conditions, observe, templates
from connector.errors import ConnectorError, StepFailed
from connector.execute import (
    DONE, FAILED, PARKED, QUEUED, UNKNOWN, WAITING, Outcome, RetryAcrossRuns, admit, follows,
)
from connector.execute.batch_requests import recovered, send
from connector.model import Action, Step
from connector.normalise import search
from connector.plan import FlowRuntime, Planned
from connector.record import Recorder
from connector.state.store import StateStore
from connector.state.batches import BatchRecord, BatchStatus
from connector.timestamps import parse_iso
from connector.transport.client import SystemClient
from connector.transport.http import AmbiguousOutcome

#: Released: the batch ended before its effect, or its effect was settled as not in flight;
#: the member's order is read again and re-planned (sent again only if still called for).
RETRY = "retry"
#: The longest scaled poll interval a run waits for in place (the sandbox's 30 s × 0.01).
SHORT_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class MemberResult:
    """What became of one member of a batch, for the run's summary and watch list."""

    order_id: str
    key: str
    action: str
    rule: str
    status: str  # done | failed | unknown | waiting | parked | retry
    message: str = ""
    follows: bool = False  # done, and its order may call for another step
    refused: bool = False  # failed because the remote side refused it (stale plan or real)
    system: str = ""
    source: Mapping[str, Any] | None = None  # the order as it was planned


class Batcher:
    """The batched actions of one flow partition's run."""

    def __init__(self, runtime: FlowRuntime, clients: Mapping[str, SystemClient],
                 store: StateStore, *, flow_key: str, partition: str, poll_scale: float,
                 retry: RetryAcrossRuns, clock: Callable[[], datetime],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.runtime, self.clients, self.store = runtime, clients, store
        self.flow_key, self.partition = flow_key, partition
        self.recorder = Recorder(store, flow_key=flow_key, partition=partition)
        self.poll_scale, self.retry, self.clock, self.sleep = poll_scale, retry, clock, sleep
        self._gathered: dict[tuple[str, str], list[Planned]] = {}
        self._lock = threading.Lock()  # orders are evaluated in a thread pool

    # -- gathering --------------------------------------------------------------------------
    def gather(self, item: Planned) -> Outcome:
        """Record the intent of a batched action and hold it for `flush`, unless it is done
        already, parked, in its backoff, or held by a live batch (then: why not)."""
        early = admit(item, self.store, retry=self.retry, now=self.clock(),
                      partition=self.partition)
        if early is not None:
            return early
        batch = item.action.batch if item.action is not None else None
        group = templates.render_value(batch.group_by, item.context) if batch and batch.group_by else ""
        with self._lock:
            self._gathered.setdefault((item.name, str(group)), []).append(item)
        return Outcome(item, QUEUED, "gathered: sent in one batch once the orders are evaluated")

    @property
    def gathered(self) -> bool:
        with self._lock:
            return bool(self._gathered)

    def flush(self) -> list[MemberResult]:
        """Send every gathered group as batches of at most `max_orders` (the caller sweeps
        the ones left waiting), in the order of their action and group: orders are evaluated
        in a thread pool, and the order batches are sent in should not depend on it."""
        results: list[MemberResult] = []
        with self._lock:
            gathered, self._gathered = self._gathered, {}
        for (_name, group), items in sorted(gathered.items(), key=lambda entry: entry[0]):
            action = items[0].action
            size = action.batch.max_orders if action is not None and action.batch else 1
            for start in range(0, len(items), size):
                results += self._start(items[start:start + size], group)
        return results

    def resume(self) -> list[MemberResult]:
        """Every live batch of the partition, where an earlier run (or this one) left it."""
        results: list[MemberResult] = []
        for record in self.store.live_batches(self.flow_key):
            results += self._advance(record, fresh=False)
        return results

    def sweep(self) -> list[MemberResult]:
        """The waiting batches again, for as long as one is due within a short wait; what
        ended (done, failed, parked, released), not what still waits."""
        results: list[MemberResult] = []
        while True:
            live = self.store.live_batches(self.flow_key)
            if not live:
                return results
            wait = (min(_moment(r.check_after) for r in live) - self.clock()).total_seconds()
            if wait > SHORT_WAIT_SECONDS:
                return results
            if wait > 0:
                self.sleep(wait)
            due = [record for record in live if _moment(record.check_after) <= self.clock()]
            if not due:  # a clock that does not move (a replay): the next run checks again
                return results
            for record in due:
                results += [r for r in self._advance(record, fresh=False)
                            if r.status not in (WAITING, UNKNOWN)]

    def waiting(self) -> list[MemberResult]:
        """The members still waiting when the run ends, each once."""
        results: list[MemberResult] = []
        for record in self.store.live_batches(self.flow_key):
            results += _members(record, WAITING, _waiting_for(record))
        return results

    # -- one batch --------------------------------------------------------------------------
    def _start(self, items: list[Planned], group: str) -> list[MemberResult]:
        batch_id = uuid.uuid4().hex[:16]
        first = items[0]
        opened = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        context = batch_context(items, group, batch_id, opened)
        self.recorder.batch_opened(batch_id, action=first.name, context=context,
                                 keys=[item.key for item in items])
        observe.emit("batch.open", batch=batch_id, action=first.name, members=len(items))
        record = BatchRecord(batch_id, self.flow_key, first.name, "open", 0, 0, {}, context,
                             opened, opened)
        return self._advance(record, fresh=True)

    def _action(self, name: str) -> Action:
        system, _, action = name.partition(".")
        found = self.runtime.systems[system].actions.get(action) if system in self.runtime.systems else None
        if found is None:
            raise ConnectorError(f"a stored batch names {name}, which the mappings no longer have")
        return found

    def _advance(self, record: BatchRecord, *, fresh: bool) -> list[MemberResult]:
        action = self._action(record.action)
        if record.status == "open" and not fresh:
            return self._release(record, "its run ended before the batch was sent")
        if record.status in ("sending", "unknown"):
            return self._recover(record, action)
        if record.status == "waiting" and _moment(record.check_after) > self.clock():
            return _members(record, WAITING, _waiting_for(record))
        return self._steps(record, action)

    def _context(self, record: BatchRecord, action: Action) -> dict[str, Any]:
        return {**record.context, "settings": self.runtime.system_settings[action.system],
                "steps": dict(record.outputs)}

    def _steps(self, record: BatchRecord, action: Action) -> list[MemberResult]:
        client = self.clients[action.system]
        context = self._context(record, action)
        outputs, polls = dict(record.outputs), record.polls
        effect = _effect_index(action)
        for index in range(record.step, len(action.steps)):
            step = action.steps[index]
            if step.when is not None and not conditions.compile_condition(step.when)(context):
                continue
            if index == effect:
                self._save(record, "sending", index, 0, outputs)
            try:
                with observe.bound(step=step.name, batch=record.batch_id):
                    step_outputs, finished = send(client, step, context)
            except AmbiguousOutcome as exc:
                if index == effect:
                    self._save(record, "unknown", index, 0, outputs)
                    return _members(record, UNKNOWN, client.redact(str(exc)))
                if index < effect:  # nothing acted yet: the members are tried again
                    return self._fail(record, client.redact(str(exc)), retryable=True)
                return self._wait(record, index, polls + 1, outputs, step)
            except StepFailed as exc:
                if index > effect and exc.retryable:  # a read after the effect: read again later
                    return self._wait(record, index, polls + 1, outputs, step)
                return self._fail(record, str(exc), retryable=exc.retryable)
            if not finished:
                return self._wait(record, index, polls + 1, outputs, step)
            outputs[step.name] = step_outputs
            context["steps"] = dict(outputs)
            polls = 0
            if index == effect:
                self._save(record, "waiting", index + 1, 0, outputs)
        return self._finish(record, action, context, outputs)

    def _recover(self, record: BatchRecord, action: Action) -> list[MemberResult]:
        """The effect step got no answer: ask the remote side (the `recover` poll) until
        nothing it may have started is in flight, then re-plan the members."""
        batch = action.batch
        if batch is None or batch.recover is None:
            return self._release(record, "its effect got no answer; re-planned from fresh reads")
        if _moment(record.check_after) > self.clock():
            return _members(record, UNKNOWN, "its effect got no answer; checking what it did")
        client = self.clients[action.system]
        try:
            finished = recovered(client, batch, batch.recover, self._context(record, action))
        except (StepFailed, AmbiguousOutcome) as exc:
            finished, message = False, client.redact(str(exc))
        else:
            message = "its effect got no answer; the remote side still has work in flight"
        if finished:
            return self._release(record, "its effect got no answer and nothing it started is in "
                                         "flight any more; re-planned from fresh reads")
        poll = batch.recover.poll
        if poll is not None and record.polls + 1 >= poll.max_attempts:
            return self._park(record, f"{message} after {record.polls + 1} checks: look at "
                                      "the remote side, then `connector retry`")
        seconds = (poll.interval_seconds if poll else 60.0) * self.poll_scale
        self._save(record, "unknown", record.step, record.polls + 1, record.outputs,
                   self.clock() + timedelta(seconds=seconds))
        return _members(record, UNKNOWN, message)

    def _finish(self, record: BatchRecord, action: Action, context: dict[str, Any],
                outputs: dict[str, Any]) -> list[MemberResult]:
        refused: dict[str, str] = {}
        errors = action.batch.errors if action.batch else None
        if errors is not None:
            for item in search(errors.source, context) or []:
                if isinstance(item, dict) and item.get(errors.member) is not None:
                    said = item.get(errors.message) if errors.message else None
                    refused[str(item[errors.member])] = str(said or "refused")
        flat = {name: value for step in outputs.values() if isinstance(step, dict)
                for name, value in step.items()}
        results = []
        for member in record.context["batch"]["members"]:
            position = str(member["position"])
            if position in refused:
                message = f"{action.system} refused: {refused[position]}"
                self.recorder.failed(member["key"], message, retryable=False)
                results.append(_result(member, FAILED, message, refused=True))
            else:
                self.recorder.done(member["key"], flat)
                results.append(_result(member, DONE))
        self._save(record, "done", len(action.steps), 0, outputs)
        observe.emit("batch.done", batch=record.batch_id, members=len(results),
                     refused=len(refused))
        return results

    def _wait(self, record: BatchRecord, index: int, polls: int, outputs: dict[str, Any],
              step: Step) -> list[MemberResult]:
        attempts = step.poll.max_attempts if step.poll else 5
        if polls >= attempts:
            return self._park(record, f"step {step.name}: still not finished after {polls} "
                                      "checks: look at the remote side, then `connector retry`")
        seconds = (step.poll.interval_seconds if step.poll else 60.0) * self.poll_scale
        until = self.clock() + timedelta(seconds=seconds)
        self._save(record, "waiting", index, polls, outputs, until)
        observe.emit("batch.waiting", batch=record.batch_id, step=step.name,
                     operation=step.request.operation or step.name, until=_iso(until))
        return _members(record, WAITING, f"waiting for {step.request.operation or step.name} "
                                         f"until {_iso(until)}")

    def _fail(self, record: BatchRecord, message: str, *, retryable: bool) -> list[MemberResult]:
        for member in record.context["batch"]["members"]:
            self.recorder.failed(member["key"], message, retryable=retryable)
        self._save(record, "done", record.step, 0, record.outputs)
        return _members(record, FAILED, message)

    def _park(self, record: BatchRecord, message: str) -> list[MemberResult]:
        for member in record.context["batch"]["members"]:
            self.recorder.parked(member["key"], message)
        self._save(record, "done", record.step, 0, record.outputs)
        return _members(record, PARKED, message)

    def _release(self, record: BatchRecord, message: str) -> list[MemberResult]:
        for member in record.context["batch"]["members"]:
            self.recorder.settled(member["key"], f"batch {record.batch_id}: {message}")
        self._save(record, "done", record.step, 0, record.outputs)
        observe.emit("batch.released", batch=record.batch_id, reason=message)
        return _members(record, RETRY, message)

    def _save(self, record: BatchRecord, status: BatchStatus, step: int, polls: int,
              outputs: dict[str, Any], check_after: datetime | None = None) -> None:
        self.recorder.batch_progress(record.batch_id, status=status, step=step, polls=polls,
                                   outputs=outputs, check_after=check_after or self.clock())


def batch_context(items: list[Planned], group: str, batch_id: str,
                  opened: str) -> dict[str, Any]:
    """What a batch's steps render with, as stored: the first member's context and `batch`
    (its members, each with its position and the key, rule and action it stands for)."""
    members = [{**_stored(item.context), "position": position, "key": item.key,
                "rule": item.rule.id, "action": item.name, "follows": follows(item)}
               for position, item in enumerate(items, start=1)]
    return {**_stored(items[0].context),
            "batch": {"id": batch_id, "group": group, "size": len(items),
                      "opened_at": opened, "members": members}}


def _effect_index(action: Action) -> int:
    """The step that acts: the declared `effect`, else the last write before the first poll
    (createFeed before getFeed), else the last write."""
    names = [step.name for step in action.steps]
    if action.batch is not None and action.batch.effect in names:
        return names.index(action.batch.effect)
    first_poll = next((i for i, step in enumerate(action.steps) if step.poll), len(names))
    writes = [i for i, step in enumerate(action.steps[:first_poll])
              if step.request.method not in ("GET", "HEAD")]
    return writes[-1] if writes else -1


def _stored(context: Mapping[str, Any]) -> dict[str, Any]:
    """An action context as a batch stores it: without the settings (secrets stay out of
    the state store) and the per-send step outputs."""
    return {name: value for name, value in context.items() if name not in ("settings", "steps")}


def _members(record: BatchRecord, status: str, message: str) -> list[MemberResult]:
    return [_result(member, status, message) for member in record.context["batch"]["members"]]


def _result(member: Mapping[str, Any], status: str, message: str = "", *,
            refused: bool = False) -> MemberResult:
    source = member.get("source") or {}
    return MemberResult(str(source.get("id")), str(member["key"]), str(member["action"]),
                        str(member["rule"]), status, message,
                        follows=status == DONE and bool(member.get("follows")),
                        refused=refused, system=str(member["action"]).split(".", 1)[0],
                        source=source)


def _waiting_for(record: BatchRecord) -> str:
    return f"batch {record.batch_id} waits for the remote side until {_iso(_moment(record.check_after))}"


def _moment(stamp: str) -> datetime:
    moment = parse_iso(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
