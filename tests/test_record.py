"""record: every write of the record stage, and what the state store holds after it.

One table of write sequences (through `Recorder`, as the engine, execute and execute.batch
make them) and the store's holdings afterwards, on a real SQLite store in tmp_path and, when
CONNECTOR_TEST_POSTGRES is set, on PostgreSQL (a fresh schema per test).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from postgres_helpers import fresh_postgres, needs_postgres

from connector.model import ActionCall, Condition, Rule, Where
from connector.plan import Planned
from connector.record import Recorder, ledger_summary
from connector.state.store import QueuedOrder, RunRecord, StateStore, open_store

FLOW = "amazon-to-vtex"
KEY = "k-cancel"
PARTITION = "A1PA6795UKMFR9"
FLOW_KEY = f"{FLOW}@{PARTITION}"
FAR = "2099-01-01T00:00:00Z"  # a watch deadline that does not expire during the test


def planned(key: str = KEY, action: str = "vtex.cancel_order",
            context: dict[str, Any] | None = None) -> Planned:
    rule = Rule("cancel-in-vtex", "", Condition("true"), (), Where(""))
    call = ActionCall(action, {"reason": "seller"})
    return Planned(FLOW, rule, call, call.system, None, dict(call.args),
                   context if context is not None else {"source": {"id": "902-1"}},
                   key, True, ())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "sqlite":
        with open_store(f"sqlite:///{tmp_path}/state.db") as s:
            yield s
    else:
        with fresh_postgres() as url, open_store(url) as s:
            yield s


def holds(store: StateStore) -> dict[str, Any]:
    """What the store holds, as the record stage left it (timestamps left out)."""
    entries = {}
    for key in (KEY, "k-report", "k-2"):
        entry = store.entry(key)
        if entry is not None:
            entries[key] = {"status": entry.status, "attempts": entry.attempts,
                            "retryable": entry.retryable, "error": entry.error,
                            "outputs": entry.outputs, "action": entry.action,
                            "order": entry.order_id, "partition": entry.partition}
    return {
        "ledger": entries,
        "watch": {(w.flow_key, w.order_id): (w.until, w.payload)
                  for w in store.watch_list(FLOW, "2000-01-01T00:00:00Z")},
        "cursors": {key: value for key, value, _ in store.cursors(FLOW)},
        "runs": [(r.partition, r.outcome, r.counts) for r in store.runs(FLOW)],
        "batches": {b.batch_id: (b.status, b.step, b.polls, b.outputs)
                    for b in store.live_batches(FLOW_KEY)},
        "members": {key: store.batch_of(key) for key in (KEY, "k-2") if store.batch_of(key)},
        "queued": [(q.partition, q.order_id, q.version) for q in store.queued(FLOW)],
    }


def pending(**more: Any) -> dict[str, Any]:
    return {"status": "pending", "attempts": 0, "retryable": True, "error": None,
            "outputs": None, "action": "vtex.cancel_order", "order": "902-1",
            "partition": PARTITION, **more}


Writes = Callable[[Recorder], object]
WATCHED_UNTIL = "2099-01-01T00:00:00.000000Z"

CASES: list[tuple[str, list[Writes], dict[str, Any]]] = [
    # -- the ledger: intent before the effect, outcome after
    ("intent", [lambda r: r.intent(planned())], {"ledger": {KEY: pending()}}),
    ("intent twice is one entry", [lambda r: r.intent(planned()), lambda r: r.intent(planned())],
     {"ledger": {KEY: pending()}}),
    ("done keeps the outputs", [lambda r: r.intent(planned()),
                                lambda r: r.done(KEY, {"order_id": "v-1"})],
     {"ledger": {KEY: pending(status="done", outputs={"order_id": "v-1"})}}),
    ("failed, retryable", [lambda r: r.intent(planned()),
                           lambda r: r.failed(KEY, "503", retryable=True)],
     {"ledger": {KEY: pending(status="failed", attempts=1, error="503")}}),
    ("failed, refused", [lambda r: r.intent(planned()),
                         lambda r: r.failed(KEY, "400 no such order", retryable=False)],
     {"ledger": {KEY: pending(status="failed", attempts=1, retryable=False,
                              error="400 no such order")}}),
    ("resent after a failure", [lambda r: r.intent(planned()),
                                lambda r: r.failed(KEY, "503", retryable=True),
                                lambda r: r.resend(KEY)],
     {"ledger": {KEY: pending(attempts=1, error="503")}}),
    ("parked", [lambda r: r.intent(planned()), lambda r: r.failed(KEY, "503", retryable=True),
                lambda r: r.parked(KEY, "failed 5 times")],
     {"ledger": {KEY: pending(status="parked", attempts=1, error="failed 5 times")}}),
    ("settled by reading", [lambda r: r.intent(planned()),
                            lambda r: r.settled(KEY, "a fresh read no longer calls for it")],
     {"ledger": {KEY: pending(status="settled", error="a fresh read no longer calls for it")}}),
    ("a report, once per key", [lambda r: r.report(planned("k-report", "report"), "look"),
                                lambda r: r.report(planned("k-report", "report"), "again")],
     {"ledger": {"k-report": pending(status="done", outputs={"message": "look"},
                                     action="report")}}),
    ("a report of an order without a source", [
        lambda r: r.report(planned("k-report", "report", {"id": "c-7"}), None)],
     {"ledger": {"k-report": pending(status="done", outputs={"message": None},
                                     action="report", order="c-7")}}),
    # -- batches: recorded with their members before the effect, progress around it
    ("batch opened", [lambda r: r.intent(planned()),
                      lambda r: r.batch_opened("b1", action="amazon.ack", context={"batch": {}},
                                               keys=[KEY, "k-2"])],
     {"ledger": {KEY: pending()}, "batches": {"b1": ("open", 0, 0, {})},
      "members": {KEY: "b1", "k-2": "b1"}}),
    ("batch waiting after its effect", [
        lambda r: r.batch_opened("b1", action="amazon.ack", context={}, keys=[KEY]),
        lambda r: r.batch_progress("b1", status="sending", step=1, polls=0, outputs={}),
        lambda r: r.batch_progress("b1", status="waiting", step=2, polls=1,
                                   outputs={"create": {"feed": "f-1"}})],
     {"batches": {"b1": ("waiting", 2, 1, {"create": {"feed": "f-1"}})}, "members": {KEY: "b1"}}),
    ("batch done frees its members", [
        lambda r: r.batch_opened("b1", action="amazon.ack", context={}, keys=[KEY]),
        lambda r: r.batch_progress("b1", status="done", step=3, polls=0, outputs={})],
     {"batches": {}, "members": {}}),
    # -- the watch list, the queue, the cursor and the run
    ("watched", [lambda r: r.watch("902-1", FAR, {"reason": "failed"})],
     {"watch": {(FLOW_KEY, "902-1"): (WATCHED_UNTIL, {"reason": "failed"})}}),
    ("watched again: the last deadline and reason", [
        lambda r: r.watch("902-1", "2098-01-01T00:00:00Z", {"reason": "failed"}),
        lambda r: r.watch("902-1", FAR, {"reason": "unknown"})],
     {"watch": {(FLOW_KEY, "902-1"): (WATCHED_UNTIL, {"reason": "unknown"})}}),
    ("unwatched", [lambda r: r.watch("902-1", FAR, {"reason": "failed"}),
                   lambda r: r.unwatch("902-1")], {"watch": {}}),
    ("unwatching an order not watched", [lambda r: r.unwatch("902-1")], {"watch": {}}),
    ("dequeued", [lambda r: r.store.enqueue([(FLOW, PARTITION, "902-1")]),
                  lambda r: r.dequeued(QueuedOrder(FLOW, PARTITION, "902-1", 1))], {"queued": []}),
    ("dequeued, but notified again meanwhile", [
        lambda r: r.store.enqueue([(FLOW, PARTITION, "902-1")]),
        lambda r: r.store.enqueue([(FLOW, PARTITION, "902-1")]),
        lambda r: r.dequeued(QueuedOrder(FLOW, PARTITION, "902-1", 1))],
     {"queued": [(PARTITION, "902-1", 2)]}),
    ("cursor", [lambda r: r.cursor("2026-03-02T12:00:00Z")],
     {"cursors": {FLOW_KEY: "2026-03-02T12:00:00Z"}}),
    ("cursor moved on", [lambda r: r.cursor("2026-03-02T12:00:00Z"),
                         lambda r: r.cursor("2026-03-02T13:00:00Z")],
     {"cursors": {FLOW_KEY: "2026-03-02T13:00:00Z"}}),
    ("run recorded", [lambda r: r.run(RunRecord(FLOW, PARTITION, "2026-03-02T12:00:00Z", 1.5,
                                                "ok", {"orders": 3}))],
     {"runs": [(PARTITION, "ok", {"orders": 3})]}),
    ("the last run replaces the one before", [
        lambda r: r.run(RunRecord(FLOW, PARTITION, "2026-03-02T12:00:00Z", 1.5, "ok", {})),
        lambda r: r.run(RunRecord(FLOW, PARTITION, "2026-03-02T13:00:00Z", 2.0, "failed",
                                  {"failed": 1}))],
     {"runs": [(PARTITION, "failed", {"failed": 1})]}),
]


@pytest.mark.parametrize("writes, expected", [(w, e) for _, w, e in CASES],
                         ids=[name for name, _, _ in CASES])
def test_writes_and_what_the_store_holds(store: StateStore, writes: list[Writes],
                                         expected: dict[str, Any]) -> None:
    recorder = Recorder(store, flow_key=FLOW_KEY, partition=PARTITION)
    before = holds(store)
    for write in writes:
        write(recorder)
    after = holds(store)
    assert {part: after[part] for part in expected} == expected
    # and nothing else changed
    assert {part: value for part, value in after.items() if part not in expected} == \
        {part: value for part, value in before.items() if part not in expected}


def test_intent_is_new_only_to_the_call_that_made_it(store: StateStore) -> None:
    """A caller tells its own fresh intent from one a crashed run left (`pending`, to be
    settled by reading): only the first `intent` of a key comes back new."""
    recorder = Recorder(store, partition=PARTITION)
    first, second = recorder.intent(planned()), recorder.intent(planned())
    assert (first.new, second.new) == (True, False)
    assert second.summary == ledger_summary(planned()) == json.dumps(
        {"action": "vtex.cancel_order", "args": {"reason": "seller"}, "rule": "cancel-in-vtex"})


def test_a_report_is_said_once(store: StateStore) -> None:
    recorder = Recorder(store)
    assert [recorder.report(planned("k-report", "report"), "look") for _ in range(3)] == \
        [True, False, False]


@pytest.mark.parametrize("outcome", [
    lambda r: r.done(KEY, {}),
    lambda r: r.failed(KEY, "503", retryable=True),
    lambda r: r.parked(KEY, "parked"),
    lambda r: r.settled(KEY, "read"),
    lambda r: r.resend(KEY),
])
def test_no_outcome_without_its_intent(store: StateStore, outcome: Writes) -> None:
    """An outcome for a key whose intent was never recorded is a bug (a traceback), not a
    write: exactly-once rests on the intent being there first."""
    with pytest.raises(KeyError):
        outcome(Recorder(store))
    assert store.entry(KEY) is None


def test_watch_list_and_cursor_are_the_partitions(store: StateStore) -> None:
    """Each partition of a flow has its own watch list and cursor: a recorder writes only
    its own, and the whole-flow key is another partition."""
    Recorder(store, flow_key=FLOW_KEY).watch("902-1", FAR, {"reason": "failed"})
    Recorder(store, flow_key=FLOW_KEY).cursor("2026-03-02T12:00:00Z")
    Recorder(store, flow_key=FLOW).cursor("2026-03-01T12:00:00Z")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [order for order, _ in store.watched(FLOW_KEY, now)] == ["902-1"]
    assert store.watched(FLOW, now) == []
    assert (store.get_cursor(FLOW_KEY), store.get_cursor(FLOW)) == \
        ("2026-03-02T12:00:00Z", "2026-03-01T12:00:00Z")


#: The state store's write methods (StateStore in connector/state/store.py).
WRITES = {"set_cursor", "begin", "retry", "unpark", "settle", "complete", "fail", "park",
          "watch", "unwatch", "record_run", "enqueue", "dequeue", "open_batch", "save_batch"}
#: Writes that are not a run's record stage: a notification queues an order for the next run,
#: and `connector retry` is a person un-parking an action.
NOT_A_RUN = {("connector/notify/receive.py", "enqueue"), ("connector/commands/retry.py", "unpark"),
             ("connector/commands/retry.py", "enqueue")}


def test_only_record_writes_to_the_store() -> None:
    """The record stage has one owner: outside connector/record.py (and the stores
    themselves) no module calls a store's write method, so the order of intent, effect and
    outcome is decided in one place."""
    import ast

    root = Path(__file__).resolve().parent.parent
    found = set()
    for path in sorted((root / "connector").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("connector/state/") or relative == "connector/record.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in WRITES and "store" in ast.unparse(node.func.value):
                found.add((relative, node.func.attr))
    assert found == NOT_A_RUN
