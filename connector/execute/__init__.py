"""Stage 8, execute: one planned action's HTTP steps, exactly once, through the ledger.

The intent is recorded (`pending`) before the first request and the outcome after (both by
`connector.record`, the record stage's one writer), so a done key is never sent again. A `pending` key left by a crash is not resent blindly: the
engine re-reads the counterpart and re-plans first, and only an action the fresh state still
calls for (same key: the order it acts on is unchanged) is sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from connector import conditions, documents, observe
from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError, LeaseLost, StepFailed
from connector.transport.http import MAX_BODY, AmbiguousOutcome, HttpResponse, error_message
from connector.model import ResponseFormat, Settle, Step
from connector.normalise import search
from connector.plan import Planned
from connector.record import Recorder
from connector.state.store import StateStore
from connector.timestamps import parse_iso

DONE, ALREADY, FAILED, UNKNOWN, PARKED = "done", "already-done", "failed", "unknown", "parked"
DEFERRED = "deferred"
#: In a live batch that waits for the remote side: not sent again, picked up by a later sweep.
WAITING = "waiting"
#: Gathered for a batch that this run sends once the orders are evaluated.
QUEUED = "queued"


@dataclass(frozen=True)
class RetryAcrossRuns:
    """How a failed action is retried by later runs: backoff doubling per failure, then parked.

    An action that keeps failing (a product missing in the catalogue, say) would otherwise be
    sent every run forever; after `max_attempts` it is set aside with its last error for a
    person, and `connector apply` says so once.
    """

    max_attempts: int = 5
    backoff_seconds: float = 300.0
    cap_seconds: float = 6 * 3600.0

    def wait(self, attempts: int) -> float:
        """Seconds after the last failure before the next try; none when no failure is
        counted (an action a person un-parked with `connector retry`)."""
        if attempts <= 0:
            return 0.0
        return min(self.cap_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RetryAcrossRuns:
        """A flow's `max_attempts` and `retry_backoff_seconds` (connector.yaml), else the
        defaults: how long an integrator lets a failing action retry is theirs to say."""
        default = cls()
        return cls(max_attempts=int(options.get("max_attempts", default.max_attempts)),
                   backoff_seconds=float(options.get("retry_backoff_seconds",
                                                     default.backoff_seconds)))


@dataclass(frozen=True)
class Outcome:
    planned: Planned
    status: str  # done | already-done | failed | unknown | parked | deferred
    message: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False  # parked by this very call
    retryable: bool = True  # of a failure: False when the remote system refused (4xx)


def send_step(client: SystemClient, step: Step, context: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Send one step once: (its outputs, whether its poll is satisfied; True without a poll)."""
    return _answered(client, step, client.send(step.request, context), context)


def _answered(client: SystemClient, step: Step, response: HttpResponse,
              context: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """What one answer to `step` says: its outputs and whether its poll is satisfied, or
    StepFailed / AmbiguousOutcome (an unexpected status, an unreadable body, `fail_if`)."""
    if response.status not in step.expect:
        retryable = response.status == 429 or response.status >= 500
        raise StepFailed(f"step {step.name}: {client.describe_error(response)}", retryable=retryable)
    if step.response is not None:
        body = _document(client, step, step.response, response, context)
    else:
        body = response.json()
    if step.response is None and response.malformed and _unreadable(response, step):
        # Answered "yes" in a body we cannot read (cut short, garbled, a proxy's HTML
        # page): the outputs are lost and, for a write, whether it acted is unknown.
        unreadable = error_message(response, client.system.error_messages)
        message = (f"step {step.name}: {client.system.name} answered {response.status} "
                   f"with an unreadable body ({unreadable})")
        if step.request.method not in ("GET", "HEAD"):
            raise AmbiguousOutcome(client.redact(message + "; the request may have "
                                                 "taken effect"))
        raise StepFailed(client.redact(message), retryable=True)
    if step.fail_if and search(step.fail_if, body):
        said = search(step.fail_message, body) if step.fail_message else None
        text = said if isinstance(said, str) and said else response.text[:300]
        raise StepFailed(f"step {step.name}: {client.system.name} refused: "
                         f"{client.redact(text[:1000])}", retryable=False)
    if step.poll is not None:
        if step.poll.fail_if and search(step.poll.fail_if, body):
            raise StepFailed(f"step {step.name}: {client.redact(json.dumps(body, default=str)[:300])}",
                             retryable=False)
        if not search(step.poll.until, body):
            return {}, False
    return {name: search(expr, body) for name, expr in step.outputs.items()}, True


def read_effect(client: SystemClient, planned: Planned, settle: Settle) -> dict[str, Any] | None:
    """The action's `settle` read, once its outcome was unknown and a fresh plan still calls
    for it (a read of the order cannot show a reservation): the outputs the effect has when
    it is there, None when the answer says it is not (then it is sent again). Raises
    StepFailed when the read itself fails: the entry stays pending, the next run reads again."""
    step, context = settle.step, {**planned.context, "steps": {}}
    response = client.send(step.request, context)
    if response.status in settle.absent:
        return None
    if response.status in step.expect and response.malformed:
        # a read of the effect itself: a body it cannot read never says the effect is there
        raise StepFailed(client.redact(f"settle: {client.system.name} answered "
                                       f"{response.status} with an unreadable body"),
                         retryable=True)
    return _answered(client, step, response, context)[0]


def effect_found(client: SystemClient, planned: Planned, record: Recorder) -> bool | None:
    """Settle an unknown outcome that a fresh plan still calls for by the action's own
    `settle` read: True when the effect is there (recorded done with the read's outputs),
    False when it is not or the action has no such read (then it is sent again), None when
    the read failed (left pending)."""
    settle = planned.action.settle if planned.action is not None else None
    if settle is None:
        return False
    try:
        found = read_effect(client, planned, settle)
    except LeaseLost:
        raise
    except (HTTPError, ConnectorError) as exc:
        observe.emit("action.settle_read_failed", error=client.redact(str(exc)))
        return None
    if found is None:
        return False
    record.done(planned.key, found)
    observe.emit("action.settled", resend=False, read="settle")
    return True


def _run_step(client: SystemClient, step: Step, context: dict[str, Any],
              sleep: Callable[[float], None], poll_scale: float) -> dict[str, Any]:
    """A step to its end, polling in place (an action without a batch; a polling action
    gets one, so that the run does not wait here)."""
    attempts = step.poll.max_attempts if step.poll else 1
    for attempt in range(attempts):
        outputs, finished = send_step(client, step, context)
        if finished:
            return outputs
        if step.poll is not None and attempt + 1 < attempts:
            seconds = step.poll.interval_seconds * poll_scale
            observe.emit("step.poll_wait", step=step.name, system=client.system.name,
                         operation=step.request.operation or step.name,
                         attempt=attempt + 1, attempts=attempts, seconds=seconds)
            sleep(seconds)
    raise StepFailed(f"step {step.name}: still not finished after {attempts} polls", retryable=True)


def _document(client: SystemClient, step: Step, spec: ResponseFormat, response: HttpResponse,
              context: dict[str, Any]) -> Any:
    """The body of a step that declares its format (an XML report, gzip when an earlier
    step's output says so). A body that does not decode is a retryable failure: the step
    is a read of a document, and reading it again is harmless."""
    compression = search(spec.compression_from, context) if spec.compression_from else None
    try:
        return documents.decode(response.body, spec.format,
                                compression=compression if isinstance(compression, str) else None,
                                lists=spec.lists, limit=MAX_BODY)
    except documents.DocumentError as exc:
        raise StepFailed(f"step {step.name}: {client.system.name}: {exc}", retryable=True) from None


def _unreadable(response: HttpResponse, step: Step) -> bool:
    """A malformed body where JSON was due: the step reads outputs or polls from it, or it
    is an HTML page (a proxy or maintenance page, not the API)."""
    html = "html" in response.headers.get("content-type", "").lower() or \
        response.body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))
    return html or bool(step.outputs or step.poll or step.fail_if)


def _parse(stamp: str) -> datetime:
    moment = parse_iso(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def follows(item: Planned) -> bool:
    """Whether the order can call for another step after `item` is done (its action's
    `follow_up`, evaluated on the context it was sent with): only then is the counterpart
    read again and the order re-evaluated in this run."""
    follow_up = item.action.follow_up if item.action is not None else True
    if isinstance(follow_up, bool):
        return follow_up
    return bool(conditions.compile_condition(follow_up)(item.context))


def admit(planned: Planned, store: StateStore, *, retry: RetryAcrossRuns | None = None,
          now: datetime | None = None, partition: str = "",
          client: SystemClient | None = None) -> Outcome | None:
    """Record the intent (`pending`) of a runnable action; None when it is to be sent now,
    else why not: done already, parked, in its backoff, or held by a live batch. With
    `client`, a crashed run's pending action that declares a `settle` read is read first."""
    policy = retry or RetryAcrossRuns()
    moment = now or datetime.now(timezone.utc)
    if planned.action is None:
        raise ConnectorError(f"{planned.name} is not an HTTP action")
    record = Recorder(store, partition=partition)
    entry = record.intent(planned)
    if entry.new:
        return None
    if entry.status == "done":
        return Outcome(planned, ALREADY, "done in an earlier run", entry.outputs or {})
    if entry.status == "parked":
        return Outcome(planned, PARKED, entry.error or "parked")
    if entry.status == "pending":
        batch = store.batch_of(planned.key)
        if batch is not None:
            return Outcome(planned, WAITING, f"sent in batch {batch}, waiting for its result")
        writer = store.pending_writer(entry)
        if writer == "live":
            # Its writer holds its lease still, or lost it so recently that its request may
            # still land: neither sent nor settled now; the order is read again next run.
            return Outcome(planned, DEFERRED, f"in flight in another run ({entry.owner or 'unknown'})"
                           ": settled by reading once it can no longer land")
        if writer == "gone" and planned.action.settle is not None and client is not None:
            # The fresh read of the order cannot show this effect (a reservation): its own.
            found = effect_found(client, planned, record)
            if found:
                done = store.entry(planned.key)
                return Outcome(planned, ALREADY, "settled by reading its effect",
                               (done.outputs if done is not None else None) or {})
            if found is None:
                return Outcome(planned, DEFERRED, "left pending by a crashed run; reading "
                                                  "its effect failed: read again next run")
        if writer == "recent":
            # Fenced off since this run's reads: its outcome is settled by reading afresh.
            return Outcome(planned, UNKNOWN, f"left pending by a run whose lease was taken "
                           f"over ({entry.owner or 'unknown'}): settled by reading")
    if entry.status == "failed":
        if entry.attempts >= policy.max_attempts:
            reason = (f"failed {entry.attempts} times, parked (not retried until a person "
                      f"acts); last error: {entry.error}")
            record.parked(planned.key, reason)
            return Outcome(planned, PARKED, reason, fresh=True)
        due = _parse(entry.updated_at) + timedelta(seconds=policy.wait(entry.attempts))
        if entry.attempts and moment < due:  # none counted: un-parked, tried at once
            return Outcome(planned, DEFERRED, f"failed {entry.attempts} time(s); next try after "
                                              f"{due.strftime('%Y-%m-%dT%H:%M:%SZ')}: {entry.error}")
    # failed earlier, pending after a crash (its writer fenced off before this run read the
    # counterpart) or of this run's own unknown outcome, or settled by an earlier read: the
    # caller re-read the counterpart and the fresh plan still asks for this very action,
    # so its effect is not there.
    record.resend(planned.key)
    return None


def execute(client: SystemClient, planned: Planned, store: StateStore, *,
            sleep: Callable[[float], None] = time.sleep, poll_scale: float = 1.0,
            retry: RetryAcrossRuns | None = None, now: datetime | None = None,
            partition: str = "") -> Outcome:
    """Run one runnable action's steps, recording intent and outcome in the ledger (the
    entry names the flow `partition` whose run began it)."""
    record = Recorder(store, partition=partition)
    early = admit(planned, store, retry=retry, now=now, partition=partition, client=client)
    if early is not None:
        return early
    action = planned.action
    if action is None:
        raise ConnectorError(f"{planned.name} is not an HTTP action")
    context = dict(planned.context)
    context["steps"] = {}
    outputs: dict[str, Any] = {}
    try:
        for step in action.steps:
            if step.when is not None and not conditions.compile_condition(step.when)(context):
                continue
            started = time.monotonic()
            with observe.bound(step=step.name):
                step_outputs = _run_step(client, step, context, sleep, poll_scale)
            observe.emit("action.step", step=step.name,
                         duration_seconds=round(time.monotonic() - started, 3))
            context["steps"] = {**context["steps"], step.name: step_outputs}
            outputs.update(step_outputs)
    except AmbiguousOutcome as exc:
        # Not resent: the next run re-reads the counterpart and re-plans before any retry.
        return Outcome(planned, UNKNOWN, client.redact(str(exc)))
    except LeaseLost:
        raise  # stopped before the next step: the entry stays pending, settled by reading
    except StepFailed as exc:
        record.failed(planned.key, str(exc), retryable=exc.retryable)
        return Outcome(planned, FAILED, str(exc), retryable=exc.retryable)
    except (HTTPError, ConnectorError) as exc:
        message = client.redact(str(exc))
        record.failed(planned.key, message, retryable=True)
        return Outcome(planned, FAILED, message)
    record.done(planned.key, outputs)
    return Outcome(planned, DONE, "", outputs)
