"""The SQL both state stores run: cursors, the idempotency ledger and the watch list, once.

SQLite and PostgreSQL share the schema (see `connector.state.store`), so the statements that
implement the `StateStore` contract are the same text for both; only the plumbing differs.
Writing them once here means the two stores cannot drift apart in semantics: a rule such as
"a done entry keeps its first outputs" lives in one `WHERE` clause, not two.

A subclass provides two primitives and the rest of the contract (connection handling,
migration scripts, the run lock):

- `_read(sql, params)`: the rows of one query, each a sequence in column order;
- `_transaction()`: a context manager for one committed transaction, yielding an `Executor`
  whose `execute(sql, params)` returns a cursor (`rowcount`, `fetchone`, `fetchall`); the
  statements here use `_write()`, which is that plus a fenced run's lease check
  (`connector.state.leases`).

Both raise `ConnectorError` on a database error. The SQL here uses `?` placeholders (SQLite's
style) and never contains `?` otherwise, so a store whose driver wants `%s` (psycopg) can
translate a statement mechanically. Rows are read by position, never by name,
because that is what every driver's rows support.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from connector.errors import ConnectorError
from connector.state.batches import BatchRecords
from connector.state.buckets import BucketRecords
from connector.state.leases import LeaseRecords
from connector.state.queue import QueueRecords
from connector.state.store import (
    LedgerEntry, RunRecord, Status, Watched, _stamp, migrations, normalise_iso,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+; only the type checker reads it

# The ledger's columns, in the order `_entry` unpacks them.
_COLUMNS = ("idem_key, flow, order_id, action, summary, status, attempts, retryable, error, "
            "outputs, created_at, updated_at, completed_at, partition_key, lease_key, "
            "lease_epoch, owner")
_SELECT_ENTRY = f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = ?"

Row = Sequence[Any]


class Cursor(Protocol):
    """The part of a DB-API cursor the stores use (sqlite3's and psycopg's both fit)."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Executor(Protocol):
    """What `_write` yields: runs one `?`-style statement inside the open transaction."""

    def execute(self, sql: str, params: tuple[Any, ...], /) -> Cursor: ...


class SqlStore(LeaseRecords, BatchRecords, QueueRecords, BucketRecords, ABC):
    """Every `StateStore` method that is plain SQL, on top of `_read` and `_write`.

    Each write method is one `_write()` block, so it is one committed transaction: when the
    method returns, the record is durable, which is what exactly-once execution rests on.
    """

    _now: Callable[[], datetime]  # the clock that stamps every row; set by the subclass

    # --- what a subclass provides -------------------------------------------------------------

    @abstractmethod
    def _read(self, sql: str, params: tuple[Any, ...]) -> Sequence[Row]:
        """The rows of one `?`-style query, outside any write transaction."""

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Executor]:
        """One committed transaction; any failure rolls back and raises ConnectorError.
        The store's writes use `_write` (`LeaseRecords`): this, with a fenced view's check."""

    @abstractmethod
    def lock(self, key: str, *, within: str | None = None) -> AbstractContextManager[None]:
        """Hold `key` exclusively (and `within` shared) while the block runs, or raise `Busy`."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- shared by the migration runners ------------------------------------------------------

    def _apply_migrations(self, conn: Executor, dialect: str, where: str,
                          run_script: Callable[[str], object]) -> None:
        """Apply the packaged migrations of `dialect` newer than `schema_version` records,
        inside the caller's transaction (`conn`), and record each. `run_script` runs one
        file's SQL, as only the store knows how its driver takes a multi-statement script.
        A store newer than this code is refused rather than used with the wrong schema."""
        available = migrations(dialect)
        latest = available[-1][0] if available else 0
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY "
                     "KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)", ())
        row = conn.execute("SELECT MAX(version) FROM schema_version", ()).fetchone()
        current = (row[0] if row else None) or 0
        if current > latest:
            raise ConnectorError(
                f"state store {where} has schema version {current}, newer than this "
                f"connector knows ({latest}): upgrade the connector")
        for version, name, sql in available:
            if version > current:
                run_script(sql)
                conn.execute("INSERT INTO schema_version (version, name, applied_at) "
                             "VALUES (?, ?, ?)", (version, name, _stamp(self._now())))

    # --- cursors ------------------------------------------------------------------------------

    def get_cursor(self, flow: str) -> str | None:
        rows = self._read("SELECT value FROM cursors WHERE flow = ?", (flow,))
        return str(rows[0][0]) if rows else None

    def set_cursor(self, flow: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO cursors (flow, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (flow) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at", (flow, value, _stamp(self._now())))

    # --- ledger -------------------------------------------------------------------------------

    def begin(self, key: str, *, flow: str, order_id: str, action: str,
              summary: str, partition: str = "") -> LedgerEntry:
        """Record the intent to run an action, unless its key is known: then return the
        existing entry untouched (check its status before sending anything).

        Two processes beginning one key at once: the second INSERT waits for the first's
        commit and then does nothing, so exactly one of them sees `new`."""
        now = _stamp(self._now())
        with self._write() as conn:
            inserted = conn.execute(
                f"INSERT INTO ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', 0, 1, NULL, "
                "NULL, ?, ?, NULL, ?, ?, ?, ?) ON CONFLICT (idem_key) DO NOTHING",
                (key, flow, order_id, action, summary, now, now, partition,
                 *self._writer())).rowcount == 1
            row = conn.execute(_SELECT_ENTRY, (key,)).fetchone()
        assert row is not None  # inserted, or there already
        entry = _entry(row, new=inserted)
        if (entry.flow, entry.order_id, entry.action) != (flow, order_id, action):
            raise ConnectorError(
                f"idempotency key {key} already records {entry.flow}/{entry.order_id}/"
                f"{entry.action}, not {flow}/{order_id}/{action}")
        return entry

    def retry(self, key: str) -> LedgerEntry:
        """Record the intent to send a failed or parked action again (back to `pending`,
        before the request, as for `begin`). A done or pending entry is left as it is."""
        return self._update(key, "status = 'pending', lease_key = ?, lease_epoch = ?, owner = ?",
                            self._writer(), "status IN ('failed', 'parked', 'settled')")

    def _writer(self) -> tuple[str, int, str]:
        """The lease that records an intent (none outside a fenced run)."""
        lease = self._fence.lease if self._fence is not None else None
        return (lease.key, lease.epoch, lease.owner) if lease is not None else ("", 0, "")

    def unpark(self, key: str) -> LedgerEntry:
        """A person's `connector retry`: a parked action becomes a failure with no attempts
        counted, so its next run tries it at once and the retry budget starts afresh."""
        return self._update(key, "status = 'failed', attempts = 0, retryable = 1", (),
                            "status = 'parked'")

    def settle(self, key: str, reason: str) -> LedgerEntry:
        """A pending write whose outcome was unknown, that a fresh read showed is no longer
        called for: settled by reading, with the reason. Sent again only if a later plan
        calls for the very same key (its effect is then known to be missing)."""
        return self._update(key, "status = 'settled', error = ?", (reason,), "status = 'pending'")

    def complete(self, key: str, outputs: dict[str, Any]) -> LedgerEntry:
        """Mark the action done with its step outputs. A done entry keeps its first outputs.

        Outputs that are not JSON are stored as their string form rather than refused:
        the remote action has happened, and failing to record it would repeat it."""
        now = _stamp(self._now())
        document = json.dumps(outputs, sort_keys=True, default=str)
        return self._update(key, "status = 'done', outputs = ?, completed_at = ?",
                            (document, now), "status <> 'done'")

    def fail(self, key: str, error: str, *, retryable: bool) -> LedgerEntry:
        """Record a failed attempt (the request certainly did not take effect, or was
        refused). A done or parked entry is left as it is."""
        return self._update(key, "status = 'failed', error = ?, retryable = ?, "
                            "attempts = attempts + 1", (error, int(retryable)),
                            "status IN ('pending', 'failed')")

    def park(self, key: str, reason: str) -> LedgerEntry:
        """Set an action aside for a person (not retried automatically). Done stays done."""
        return self._update(key, "status = 'parked', error = ?", (reason,), "status <> 'done'")

    def _update(self, key: str, assignments: str, params: tuple[Any, ...],
                allowed: str) -> LedgerEntry:
        """Apply `assignments` if the entry's status is `allowed`, and return the entry as it
        stands either way: a refused transition is not an error, the caller reads the status."""
        with self._write() as conn:
            conn.execute(f"UPDATE ledger SET {assignments}, updated_at = ? "
                         f"WHERE idem_key = ? AND {allowed}",
                         (*params, _stamp(self._now()), key))
            row = conn.execute(_SELECT_ENTRY, (key,)).fetchone()
        if row is None:
            raise KeyError(f"no ledger entry for idempotency key {key}")
        return _entry(row)

    def entry(self, key: str) -> LedgerEntry | None:
        rows = self._read(_SELECT_ENTRY, (key,))
        return _entry(rows[0]) if rows else None

    def entries(self, flow: str, status: Status) -> list[LedgerEntry]:
        rows = self._read(f"SELECT {_COLUMNS} FROM ledger WHERE flow = ? AND status = ? "
                          "ORDER BY created_at, idem_key", (flow, status))
        return [_entry(row) for row in rows]

    def order_entries(self, order_or_key: str) -> list[LedgerEntry]:
        """Every flow's entries of an order id, or the one entry of an idempotency key."""
        rows = self._read(f"SELECT {_COLUMNS} FROM ledger WHERE order_id = ? OR idem_key = ? "
                          "ORDER BY flow, created_at, idem_key", (order_or_key, order_or_key))
        return [_entry(row) for row in rows]

    def pending_entries(self, flow: str) -> list[LedgerEntry]:
        return self.entries(flow, "pending")

    def failed_entries(self, flow: str) -> list[LedgerEntry]:
        return self.entries(flow, "failed")

    def outputs(self, flow: str, order_id: str) -> dict[str, dict[str, Any]]:
        """Outputs of the order's done actions by action name; the latest completion wins."""
        rows = self._read("SELECT action, outputs FROM ledger WHERE flow = ? AND order_id = ? "
                          "AND status = 'done' ORDER BY completed_at, created_at",
                          (flow, order_id))
        return {action: json.loads(outputs or "{}") for action, outputs in rows}

    # --- watch list ---------------------------------------------------------------------------

    def watch(self, flow: str, order_id: str, until_iso: str, payload_json: str) -> None:
        until = normalise_iso(until_iso)
        with self._write() as conn:
            conn.execute("INSERT INTO watch (flow, order_id, until_at, payload) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (flow, order_id) DO UPDATE SET "
                         "until_at = excluded.until_at, payload = excluded.payload",
                         (flow, order_id, until, payload_json))

    def watched(self, flow: str, now_iso: str) -> list[tuple[str, str]]:
        """(order id, payload) of the flow's watched orders; expired ones are dropped."""
        now = normalise_iso(now_iso)
        with self._write() as conn:
            conn.execute("DELETE FROM watch WHERE flow = ? AND until_at <= ?", (flow, now))
            rows = conn.execute("SELECT order_id, payload FROM watch WHERE flow = ? "
                                "ORDER BY order_id", (flow,)).fetchall()
        return [(str(order_id), str(payload)) for order_id, payload in rows]

    def unwatch(self, flow: str, order_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM watch WHERE flow = ? AND order_id = ?", (flow, order_id))

    def watch_list(self, flow: str, now_iso: str) -> list[Watched]:
        """The unexpired watch lists of every partition of `flow`, read only (`watched`
        drops expired rows; a status check must not)."""
        rows = self._read("SELECT flow, order_id, until_at, payload FROM watch WHERE "
                          f"{_OF_FLOW} AND until_at > ? ORDER BY flow, until_at, order_id",
                          (*_of_flow(flow), normalise_iso(now_iso)))
        return [Watched(str(key), str(order_id), str(until), _payload(payload))
                for key, order_id, until, payload in rows]

    # --- cursors and runs per partition -------------------------------------------------------

    def cursors(self, flow: str) -> list[tuple[str, str, str]]:
        """(flow key, value, updated at) of every partition of `flow` with a cursor."""
        rows = self._read(f"SELECT flow, value, updated_at FROM cursors WHERE {_OF_FLOW} "
                          "ORDER BY flow", _of_flow(flow))
        return [(str(key), str(value), str(updated)) for key, value, updated in rows]

    def record_run(self, run: RunRecord) -> None:
        """Keep `run` as its partition's last run (the one before is replaced)."""
        key = f"{run.flow}@{run.partition}" if run.partition else run.flow
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (flow_key, flow, partition_key, started_at, duration_seconds, "
                "outcome, counts) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (flow_key) DO UPDATE "
                "SET started_at = excluded.started_at, duration_seconds = "
                "excluded.duration_seconds, outcome = excluded.outcome, counts = excluded.counts",
                (key, run.flow, run.partition, normalise_iso(run.started_at),
                 float(run.duration_seconds), run.outcome, json.dumps(run.counts, sort_keys=True)))

    def runs(self, flow: str) -> list[RunRecord]:
        rows = self._read("SELECT flow, partition_key, started_at, duration_seconds, outcome, "
                          "counts FROM runs WHERE flow = ? ORDER BY partition_key", (flow,))
        return [RunRecord(str(f), str(p), str(started), float(seconds), str(outcome),
                          json.loads(counts)) for f, p, started, seconds, outcome, counts in rows]


#: A key column that names `flow` or one of its partitions (`flow@partition`); portable, and
#: unlike LIKE, blind to `_` and `%` in flow names. Its parameters: `_of_flow(flow)`.
_OF_FLOW = "(flow = ? OR substr(flow, 1, ?) = ?)"


def _of_flow(flow: str) -> tuple[str, int, str]:
    """The parameters of `_OF_FLOW`."""
    return flow, len(flow) + 1, flow + "@"


def _payload(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _entry(row: Row, *, new: bool = False) -> LedgerEntry:
    """A ledger row in `_COLUMNS` order."""
    (key, flow, order_id, action, summary, status, attempts, retryable, error, outputs,
     created_at, updated_at, completed_at, partition, lease_key, lease_epoch, owner) = row
    return LedgerEntry(
        key=key, flow=flow, order_id=order_id, action=action, summary=summary, status=status,
        attempts=attempts, retryable=bool(retryable), error=error,
        outputs=json.loads(outputs) if outputs is not None else None,
        created_at=created_at, updated_at=updated_at, completed_at=completed_at, new=new,
        partition=partition or "", lease_key=lease_key or "", lease_epoch=int(lease_epoch or 0),
        owner=owner or "")
