"""The SQLite state store (the default): one file, WAL, `synchronous=FULL`, a file lock per run.

The contract, its semantics and the reasons behind them are in `connector.state`; this
module is the single-machine implementation. Every write is its own committed transaction,
so a `kill -9` cannot lose an acknowledged write, and the run lock is an OS file lock that
the kernel releases when its holder dies.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connector.errors import ConnectorError
from connector.state import (
    _COLUMNS,
    Busy,
    LedgerEntry,
    Status,
    _stamp,
    _statements,
    _utcnow,
    migrations,
    normalise_iso,
)

if TYPE_CHECKING:
    from typing import Self

@contextmanager
def _file_lock(path: str, key: str, *, shared: bool) -> Iterator[None]:
    """`flock` on `path`, dropped by the kernel when the process dies. The exclusive holder
    writes its pid there, for the message another process shows."""
    import fcntl  # POSIX only: imported here so that the module still loads elsewhere

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConnectorError(f"cannot create lock file {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            holder = f"pid {pid}" if pid else "runs of its partitions"
            raise Busy(f"flow {key} is already running in another process ({holder}); this "
                       "run stops without acting") from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            if not shared:
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


class SQLiteStore:
    """The SQLite state store: one connection shared by the worker threads, behind a lock.

    The connection is in autocommit mode and each method runs `BEGIN IMMEDIATE … COMMIT`
    itself, so no write lingers uncommitted in a Python-managed transaction.
    """

    def __init__(self, path: str, *, now: Callable[[], datetime] = _utcnow) -> None:
        self._path = path
        self._now = now
        self._lock = threading.Lock()
        self._lock_dir: str | None = None  # lock files of a :memory: store
        try:
            self._conn = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConnectorError(f"cannot open state store {path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise ConnectorError(f"cannot open state store {path}: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # --- plumbing ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        available = migrations("sqlite")
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY "
                         "KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            current = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            latest = available[-1][0] if available else 0
            if current > latest:
                raise ConnectorError(
                    f"state store {self._path} has schema version {current}, newer than this "
                    f"connector knows ({latest}): upgrade the connector")
            for version, name, sql in available:
                if version > current:
                    for statement in _statements(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version (version, name, applied_at) "
                                 "VALUES (?, ?, ?)", (version, name, _stamp(self._now())))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; any failure rolls back and raises ConnectorError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise ConnectorError(f"state store write failed: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the original error is the one worth reporting

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ConnectorError(f"state store read failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._lock_dir is not None:
                shutil.rmtree(self._lock_dir, ignore_errors=True)

    @contextmanager
    def lock(self, key: str, *, within: str | None = None) -> Iterator[None]:
        """Hold `key` exclusively (and `within` shared) while the block runs, or raise `Busy`.
        Lock files sit beside the database (`<db>.<key>.lock`); they are left in place,
        as deleting a lock file would let two processes lock two different files."""
        if self._path == ":memory:":
            with self._lock:
                self._lock_dir = self._lock_dir or tempfile.mkdtemp(prefix="connector-locks-")
            base = os.path.join(self._lock_dir, "memory")
        else:
            base = self._path
        with ExitStack() as stack:
            for name, shared in ((within, True), (key, False)):
                if name is not None:
                    path = f"{base}.{quote(name, safe='@-_.')}.lock"
                    stack.enter_context(_file_lock(path, name, shared=shared))
            yield

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- cursors ----------------------------------------------------------------------------

    def get_cursor(self, flow: str) -> str | None:
        rows = self._read("SELECT value FROM cursors WHERE flow = ?", (flow,))
        return str(rows[0]["value"]) if rows else None

    def set_cursor(self, flow: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO cursors (flow, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (flow) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at", (flow, value, _stamp(self._now())))

    # --- ledger -----------------------------------------------------------------------------

    def begin(self, key: str, *, flow: str, order_id: str, action: str,
              summary: str) -> LedgerEntry:
        """Record the intent to run an action, unless its key is known: then return the
        existing entry untouched (check its status before sending anything)."""
        now = _stamp(self._now())
        with self._write() as conn:
            inserted = conn.execute(
                f"INSERT INTO ledger ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', 0, 1, NULL, "
                "NULL, ?, ?, NULL) ON CONFLICT (idem_key) DO NOTHING",
                (key, flow, order_id, action, summary, now, now)).rowcount == 1
            row = conn.execute(f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = ?",
                               (key,)).fetchone()
        entry = _entry(row, new=inserted)
        if (entry.flow, entry.order_id, entry.action) != (flow, order_id, action):
            raise ConnectorError(
                f"idempotency key {key} already records {entry.flow}/{entry.order_id}/"
                f"{entry.action}, not {flow}/{order_id}/{action}")
        return entry

    def retry(self, key: str) -> LedgerEntry:
        """Record the intent to send a failed or parked action again (back to `pending`,
        before the request, as for `begin`). A done or pending entry is left as it is."""
        return self._update(key, "status = 'pending'", (), "status IN ('failed', 'parked')")

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
        with self._write() as conn:
            conn.execute(f"UPDATE ledger SET {assignments}, updated_at = ? "
                         f"WHERE idem_key = ? AND {allowed}",
                         (*params, _stamp(self._now()), key))
            row = conn.execute(f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = ?",
                               (key,)).fetchone()
        if row is None:
            raise KeyError(f"no ledger entry for idempotency key {key}")
        return _entry(row)

    def entry(self, key: str) -> LedgerEntry | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = ?", (key,))
        return _entry(rows[0]) if rows else None

    def entries(self, flow: str, status: Status) -> list[LedgerEntry]:
        rows = self._read(f"SELECT {_COLUMNS} FROM ledger WHERE flow = ? AND status = ? "
                          "ORDER BY created_at, idem_key", (flow, status))
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
        return {row["action"]: json.loads(row["outputs"] or "{}") for row in rows}

    # --- watch list -------------------------------------------------------------------------

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
        return [(row["order_id"], row["payload"]) for row in rows]

    def unwatch(self, flow: str, order_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM watch WHERE flow = ? AND order_id = ?", (flow, order_id))


def _entry(row: sqlite3.Row, *, new: bool = False) -> LedgerEntry:
    return LedgerEntry(
        key=row["idem_key"], flow=row["flow"], order_id=row["order_id"], action=row["action"],
        summary=row["summary"], status=row["status"], attempts=row["attempts"],
        retryable=bool(row["retryable"]), error=row["error"],
        outputs=json.loads(row["outputs"]) if row["outputs"] is not None else None,
        created_at=row["created_at"], updated_at=row["updated_at"],
        completed_at=row["completed_at"], new=new)
