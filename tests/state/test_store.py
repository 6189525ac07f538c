from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from postgres_helpers import fresh_postgres, needs_postgres, store_url  # noqa: F401

from connector.errors import ConnectorError
from connector.state.store import (
    StateStore,
    migrations,
    normalise_iso,
    open_store,
)
from connector.state.sqlite import SQLiteStore

# The behaviours below hold for both stores: `store` and `store_url` (postgres_helpers.py)
# run each test on SQLite and on PostgreSQL (skipped when CONNECTOR_TEST_POSTGRES is unset).


class Now:
    """A settable UTC clock advancing one second per reading, so order is observable."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "sqlite":
        with open_store("sqlite:///:memory:", now=Now()) as s:
            yield s
    else:
        with fresh_postgres() as url, open_store(url, now=Now()) as s:
            yield s


def begin(store: StateStore, key: str = "k1", order_id: str = "o1",
          action: str = "vtex.cancel") -> Any:
    return store.begin(key, flow="amazon-to-vtex", order_id=order_id, action=action,
                       summary=f"{action} {order_id}")


# --- ledger ---------------------------------------------------------------------------------


def test_begin_records_pending_intent(store: StateStore) -> None:
    entry = begin(store)
    assert (entry.status, entry.attempts, entry.new, entry.outputs) == ("pending", 0, True, None)
    assert entry.summary == "vtex.cancel o1"
    assert store.pending_entries("amazon-to-vtex") == [store.entry("k1")]


@pytest.mark.parametrize(("settle", "status", "attempts"), [
    (lambda s: None, "pending", 0),  # a crash between begin and the outcome
    (lambda s: s.complete("k1", {"receipt": "r1"}), "done", 0),
    (lambda s: s.fail("k1", "503", retryable=True), "failed", 1),
    (lambda s: s.park("k1", "needs a person"), "parked", 0),
])
def test_begin_twice_returns_the_existing_entry(store: StateStore, settle: Any, status: str,
                                                attempts: int) -> None:
    begin(store)
    settle(store)
    again = begin(store)
    assert (again.status, again.attempts, again.new) == (status, attempts, False)


def test_begin_refuses_a_key_reused_for_another_action(store: StateStore) -> None:
    begin(store)
    with pytest.raises(ConnectorError, match="already records"):
        begin(store, order_id="o2")


@pytest.mark.parametrize("after", [
    lambda s: s.fail("k1", "boom", retryable=False),
    lambda s: s.park("k1", "why"),
    lambda s: s.retry("k1"),
    lambda s: s.complete("k1", {"other": 1}),
])
def test_done_stays_done(store: StateStore, after: Any) -> None:
    begin(store)
    done = store.complete("k1", {"receipt": "r1"})
    after(store)
    entry = store.entry("k1")
    assert entry is not None and entry.status == "done"
    assert entry.outputs == {"receipt": "r1"} and entry.completed_at == done.completed_at


def test_fail_counts_attempts_and_retry_reopens(store: StateStore) -> None:
    begin(store)
    store.fail("k1", "429 quota", retryable=True)
    assert store.retry("k1").status == "pending"
    failed = store.fail("k1", "400 bad request", retryable=False)
    assert (failed.status, failed.attempts, failed.error, failed.retryable) == (
        "failed", 2, "400 bad request", False)
    assert store.failed_entries("amazon-to-vtex") == [failed]
    assert store.failed_entries("other-flow") == []
    parked = store.park("k1", "refused twice")
    assert (parked.status, parked.error) == ("parked", "refused twice")
    assert store.fail("k1", "late", retryable=True).status == "parked"  # parked stays parked
    assert store.entries("amazon-to-vtex", "parked") == [store.entry("k1")]
    assert store.retry("k1").status == "pending"


@pytest.mark.parametrize("method", [
    lambda s: s.complete("nope", {}), lambda s: s.fail("nope", "x", retryable=True),
    lambda s: s.park("nope", "x"), lambda s: s.retry("nope"),
])
def test_unknown_key(store: StateStore, method: Any) -> None:
    with pytest.raises(KeyError):
        method(store)
    assert store.entry("nope") is None


def test_outputs_per_order_latest_wins(store: StateStore) -> None:
    begin(store, "k1", "o1", "vtex.start_handling")
    begin(store, "k2", "o1", "vtex.cancel")
    begin(store, "k3", "o1", "vtex.cancel")
    begin(store, "k4", "o2", "vtex.cancel")
    begin(store, "k5", "o1", "report")
    store.complete("k1", {"status": "handling"})
    store.complete("k3", {"receipt": "second"})
    store.complete("k2", {"receipt": "first", "when": datetime(2026, 1, 1)})
    store.complete("k4", {"receipt": "other order"})
    store.fail("k5", "x", retryable=True)
    assert store.outputs("amazon-to-vtex", "o1") == {
        "vtex.start_handling": {"status": "handling"},
        "vtex.cancel": {"receipt": "first", "when": "2026-01-01 00:00:00"},
    }
    assert store.outputs("amazon-to-vtex", "o3") == {}


def test_concurrent_begin_creates_one_entry(store_url: str) -> None:
    with open_store(store_url) as store:
        results: list[bool] = []
        threads = [threading.Thread(target=lambda: results.append(begin(store).new))
                   for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [False] * 15 + [True]


# --- cursors and the watch list ---------------------------------------------------------


def test_cursor(store: StateStore) -> None:
    assert store.get_cursor("amazon-to-vtex") is None
    store.set_cursor("amazon-to-vtex", "2026-01-01T00:00:00Z")
    store.set_cursor("amazon-to-vtex", "2026-01-02T00:00:00Z")
    store.set_cursor("other", "token-abc")
    assert store.get_cursor("amazon-to-vtex") == "2026-01-02T00:00:00Z"
    assert store.get_cursor("other") == "token-abc"


@pytest.mark.parametrize(("now", "expected"), [
    ("2026-01-01T00:00:00Z", ["o1", "o2"]),
    ("2026-01-01T11:59:59+00:00", ["o1", "o2"]),
    ("2026-01-01T12:00:00Z", ["o2"]),  # o1's deadline reached: dropped
    ("2026-01-01T09:00:00-03:00", ["o2"]),  # the same instant in another zone
    ("2026-01-02T00:00:00", []),  # naive: UTC
])
def test_watch_expiry(store: StateStore, now: str, expected: list[str]) -> None:
    store.watch("f", "o1", "2026-01-01T12:00:00Z", '{"n": 1}')
    store.watch("f", "o2", "2026-01-01T14:00:00+01:00", '{"n": 2}')  # 13:00 UTC
    store.watch("g", "o9", "2030-01-01T00:00:00Z", "{}")
    assert [order for order, _ in store.watched("f", now)] == expected
    assert [order for order, _ in store.watched("f", "2026-01-01T00:00:00Z")] == expected


def test_watch_update_and_unwatch(store: StateStore) -> None:
    store.watch("f", "o1", "2026-01-01T12:00:00Z", '{"n": 1}')
    store.watch("f", "o1", "2026-01-03T12:00:00Z", '{"n": 2}')
    assert store.watched("f", "2026-01-02T00:00:00Z") == [("o1", '{"n": 2}')]
    store.unwatch("f", "o1")
    store.unwatch("f", "never-watched")
    assert store.watched("f", "2026-01-02T00:00:00Z") == []


def test_a_queued_order_notified_again_while_its_run_works_stays_queued(
        store: StateStore) -> None:
    store.enqueue([("f", "US", "o1"), ("f", "MX", "o2"), ("g", "", "o1")])
    store.enqueue([("f", "US", "o1")])  # a duplicate message: the same row, one version on
    assert [(q.partition, q.order_id, q.version) for q in store.queued("f")] == [
        ("MX", "o2", 1), ("US", "o1", 2)]
    (taken,) = store.queued("f", "US")
    store.enqueue([("f", "US", "o1")])  # notified again while the run works on version 2
    store.dequeue(taken)
    assert [(q.order_id, q.version) for q in store.queued("f", "US")] == [("o1", 3)]
    store.dequeue(store.queued("f", "US")[0])
    assert store.queued("f", "US") == [] and len(store.queued("f")) == 1
    assert [q.order_id for q in store.queued("g", "")] == ["o1"]


@pytest.mark.parametrize("value", ["yesterday", "", "2026-13-01T00:00:00Z"])
def test_bad_timestamps(store: StateStore, value: str) -> None:
    with pytest.raises(ConnectorError, match="not an ISO-8601 timestamp"):
        store.watch("f", "o1", value, "{}")


def test_normalised_timestamps_sort_as_strings() -> None:
    assert normalise_iso("2026-01-01T00:00:00.5+02:00") == "2025-12-31T22:00:00.500000Z"


# --- durability, URLs, errors ---------------------------------------------------------------


def test_persists_across_close_and_reopen(store_url: str) -> None:
    url = store_url  # SQLite: in a directory that does not exist yet (it is created)
    with open_store(url) as store:
        begin(store)
        store.complete("k1", {"receipt": "r1"})
        begin(store, "k2")
        store.set_cursor("amazon-to-vtex", "c1")
        store.watch("amazon-to-vtex", "o1", "2099-01-01T00:00:00Z", "{}")
    with open_store(url) as store:
        entry = store.entry("k1")
        assert entry is not None and entry.status == "done"
        assert [e.key for e in store.pending_entries("amazon-to-vtex")] == ["k2"]
        assert store.get_cursor("amazon-to-vtex") == "c1"
        assert store.watched("amazon-to-vtex", "2026-01-01T00:00:00Z") == [("o1", "{}")]


def test_acknowledged_writes_survive_kill_9(store_url: str) -> None:
    script = (
        "import os, signal\n"
        "from connector.state.store import open_store\n"
        f"s = open_store({store_url!r})\n"
        "s.begin('k1', flow='f', order_id='o1', action='a', summary='')\n"
        "s.complete('k1', {'ok': True})\n"
        "s.begin('k2', flow='f', order_id='o2', action='a', summary='')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr
    with open_store(store_url) as store:
        assert store.outputs("f", "o1") == {"a": {"ok": True}}
        assert [e.key for e in store.pending_entries("f")] == ["k2"]


def test_relative_path_and_schema_version(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///.connector/state.db").close()
    open_store("sqlite:///.connector/state.db").close()  # migrations are not re-applied
    with sqlite3.connect(tmp_path / ".connector" / "state.db") as conn:
        rows = conn.execute("SELECT version, name FROM schema_version").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert rows == [(v, name) for v, name, _ in migrations("sqlite")]
    assert rows[0] == (1, "0001_initial.sql") and mode == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    open_store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, '0999_future.sql', 'x')")
    conn.close()
    with pytest.raises(ConnectorError, match="schema version 999, newer"):
        open_store(f"sqlite:///{db}")


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://user:hunter2@db/connector", "unsupported state URL 'mysql://user:***@db/"),
    ("state.db", "unsupported state URL 'state.db': use sqlite:///path"),
    ("sqlite://state.db", "unsupported state URL"),
    ("sqlite:///", "does not name a database file"),
    ("sqlite:///state.db?mode=ro", "does not name a database file"),
])
def test_bad_url(url: str, message: str) -> None:
    with pytest.raises(ConnectorError, match=re.escape(message)) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


def test_unopenable_file(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    with pytest.raises(ConnectorError, match="cannot open state store"):
        open_store(f"sqlite:///{tmp_path}/a-directory.db")


def test_write_failure_raises_and_rolls_back() -> None:
    with SQLiteStore(":memory:") as store:
        store._conn.execute("CREATE TRIGGER no_cursors BEFORE INSERT ON cursors "
                            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        with pytest.raises(ConnectorError, match="state store write failed: disk on fire"):
            store.set_cursor("f", "c")
        assert store.get_cursor("f") is None
        begin(store)  # the connection is usable again: the transaction was rolled back


def test_closed_store_raises() -> None:
    store = open_store("sqlite:///:memory:")
    store.close()
    with pytest.raises(ConnectorError, match="state store write failed"):
        store.set_cursor("f", "c")
    with pytest.raises(ConnectorError, match="state store read failed"):
        store.get_cursor("f")


# --- what status and retry read and write (migration 0004) ---------------------------------


def test_unpark_settle_and_their_allowed_transitions(store: StateStore) -> None:
    begin(store, "k1")
    assert store.unpark("k1").status == "pending"  # only a parked entry is un-parked
    store.fail("k1", "400", retryable=False)
    store.fail("k1", "400", retryable=False)
    store.park("k1", "failed twice")
    entry = store.unpark("k1")
    assert (entry.status, entry.attempts, entry.retryable) == ("failed", 0, True)
    begin(store, "k2", order_id="o2")
    assert store.settle("k2", "a fresh read calls for nothing").status == "settled"
    assert store.settle("k1", "x").status == "failed"  # only a pending entry is settled
    assert store.retry("k2").status == "pending"  # a later plan calls for the same key


def test_partition_and_order_entries(store: StateStore) -> None:
    store.begin("k1", flow="amazon-to-vtex", order_id="o1", action="a", summary="s",
                partition="ATVPDKIKX0DER")
    store.begin("k2", flow="other", order_id="o1", action="a", summary="s")
    assert store.entry("k1") is not None and store.entry("k1").partition == "ATVPDKIKX0DER"  # type: ignore[union-attr]
    assert [e.key for e in store.order_entries("o1")] == ["k1", "k2"]
    assert [e.key for e in store.order_entries("k2")] == ["k2"]


def test_cursors_runs_and_watch_list_per_partition(store: StateStore) -> None:
    from connector.state.store import RunRecord

    for key in ("amazon-to-vtex", "amazon-to-vtex@A1", "amazon-to-vtex-eu", "amazon_to_vtex"):
        store.set_cursor(key, "2026-01-01T00:00:00Z")
    assert [key for key, _, _ in store.cursors("amazon-to-vtex")] == [
        "amazon-to-vtex", "amazon-to-vtex@A1"]  # not another flow sharing the prefix
    store.record_run(RunRecord("amazon-to-vtex", "A1", "2026-01-01T00:00:00Z", 1.5, "ok",
                               {"orders": 3}))
    store.record_run(RunRecord("amazon-to-vtex", "A1", "2026-01-01T01:00:00Z", 2.0, "failed",
                               {"orders": 4, "failed": 1}))
    (run,) = store.runs("amazon-to-vtex")
    assert (run.partition, run.outcome, run.counts) == ("A1", "failed", {"orders": 4, "failed": 1})
    store.watch("amazon-to-vtex@A1", "o1", "2026-01-03T00:00:00Z", '{"reason": "failed"}')
    store.watch("amazon-to-vtex", "o2", "2026-01-02T00:00:00Z", "not json")
    listed = store.watch_list("amazon-to-vtex", "2026-01-02T12:00:00Z")
    assert [(w.flow_key, w.order_id, w.payload) for w in listed] == [
        ("amazon-to-vtex@A1", "o1", {"reason": "failed"})]
    # read only: the expired row is still there for the run that drops it
    assert [o for o, _ in store.watched("amazon-to-vtex", "2026-01-01T12:00:00Z")] == ["o2"]


def test_a_store_of_schema_3_is_migrated_keeping_its_ledger(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT "
                 "NULL, applied_at TEXT NOT NULL)")
    for version, name, sql in migrations("sqlite")[:3]:
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_version VALUES (?, ?, 'x')", (version, name))
    conn.execute("INSERT INTO ledger (idem_key, flow, order_id, action, summary, status, "
                 "attempts, retryable, created_at, updated_at) VALUES ('k1', 'f', 'o1', 'a', "
                 "'s', 'parked', 5, 1, '2026-01-01T00:00:00.000000Z', "
                 "'2026-01-01T00:00:00.000000Z')")
    conn.commit()
    conn.close()
    with open_store(f"sqlite:///{db}") as store:
        entry = store.entry("k1")
        assert entry is not None and (entry.status, entry.attempts, entry.partition) == (
            "parked", 5, "")
        assert store.unpark("k1").status == "failed"
