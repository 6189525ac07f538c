"""The PostgreSQL state store: the same contract as `SQLiteStore`, shared by many workers.

Why PostgreSQL: a fleet of workers on several machines needs one store that they can all
reach and that serialises their writes; it also carries the task queue (procrastinate), so
one system serves as both. The semantics are SQLite's, method for method: every write is
its own committed transaction (`synchronous_commit` is left on, so an acknowledged write
survives a crash), a failed write raises `ConnectorError("state store write failed: …")`,
timestamps are stamped here in Python in the same fixed-width text form, and the tables come
from the versioned files in `connector/migrations/postgresql/`.

The engine calls the store from a thread pool, so connections come from a small pool
(psycopg_pool): each call borrows one for its transaction. Run exclusion (`lock`) uses
session advisory locks on a dedicated connection, which the server releases by itself when
the holding process dies or its connection drops.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool

from connector.errors import ConnectorError
from connector.state import (
    _COLUMNS,
    Busy,
    LedgerEntry,
    Status,
    _hide_password,
    _stamp,
    _utcnow,
    migrations,
    normalise_iso,
)

if TYPE_CHECKING:
    from typing import Self

# First key of every run-exclusion advisory lock ("conn" in ASCII): the two-integer form keeps
# our locks apart from other applications' single-bigint advisory locks on the same server.
LOCK_SPACE = 0x636F6E6E
# The key that serialises schema migrations between processes starting together.
MIGRATION_LOCK = "connector:schema-migrations"


def _message(exc: BaseException) -> str:
    """The server's one-line message (without CONTEXT/DETAIL lines), as SQLite gives it."""
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    if primary:
        return str(primary)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _application_name() -> str:
    """Shown in pg_stat_activity, and so in another process's `Busy` message."""
    return f"connector pid {os.getpid()} on {socket.gethostname()}"[:63]


class PostgresStore:
    """The PostgreSQL state store; `url` is a libpq URL (`postgresql://user@host/db`)."""

    def __init__(self, url: str, *, now: Callable[[], datetime] = _utcnow,
                 pool_size: int = 8) -> None:
        self._url = url
        self._shown = _hide_password(url)
        self._now = now
        try:
            self._migrate()
        except psycopg.Error as exc:
            raise ConnectorError(f"cannot open state store {self._shown}: {_message(exc)}") from exc
        # min_size=1: a worker keeps one connection warm; more are opened under load.
        self._pool: ConnectionPool = ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), open=True, timeout=30.0,
            kwargs={"application_name": _application_name()}, name="connector-state")

    # --- plumbing ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Apply the packaged migrations not yet recorded, all in one transaction under an
        advisory lock, so that two workers starting together neither race nor half-apply."""
        available = migrations("postgresql")
        latest = available[-1][0] if available else 0
        with psycopg.connect(self._url, connect_timeout=15,
                             application_name=_application_name()) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY "
                         "KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = (row[0] if row else None) or 0
            if current > latest:
                raise ConnectorError(
                    f"state store {self._shown} has schema version {current}, newer than this "
                    f"connector knows ({latest}): upgrade the connector")
            for version, name, sql in available:
                if version > current:
                    conn.execute(sql.encode())  # no parameters: the file is sent as it is
                    conn.execute("INSERT INTO schema_version (version, name, applied_at) "
                                 "VALUES (%s, %s, %s)", (version, name, _stamp(self._now())))
            # leaving the block commits (or rolls back on error), releasing the lock

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One committed transaction; any failure rolls back and raises ConnectorError."""
        try:
            with self._pool.connection() as conn:  # commits on success, rolls back on error
                yield conn
        except psycopg.Error as exc:
            raise ConnectorError(f"state store write failed: {_message(exc)}") from exc

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise ConnectorError(f"state store read failed: {_message(exc)}") from exc

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- run exclusion ------------------------------------------------------------------------

    @contextmanager
    def lock(self, key: str, *, within: str | None = None) -> Iterator[None]:
        """Hold `key` exclusively (and `within` shared) while the block runs: session
        advisory locks on a connection of their own, released when the block ends, when
        this process dies, or when its connection is lost (TCP keepalives bound that to
        about a minute for a machine that vanished). Raises `Busy` if another session holds
        them."""
        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=15,
                                   application_name=_application_name(), keepalives=1,
                                   keepalives_idle=30, keepalives_interval=10,
                                   keepalives_count=3)
        except psycopg.Error as exc:
            raise ConnectorError(f"cannot lock {key} in state store {self._shown}: "
                                 f"{_message(exc)}") from exc
        with conn:
            try:
                # The server side of the socket too, so the server frees a dead peer's lock.
                conn.execute("SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; "
                             "SET tcp_keepalives_count = 3")
                if within is not None:
                    self._try_lock(conn, within, shared=True)
                self._try_lock(conn, key, shared=False)
            except psycopg.Error as exc:
                raise ConnectorError(f"cannot lock {key} in state store {self._shown}: "
                                     f"{_message(exc)}") from exc
            try:
                yield
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock_all()")
                except psycopg.Error:
                    pass  # closing the session releases them anyway

    def _try_lock(self, conn: psycopg.Connection[Any], key: str, *, shared: bool) -> None:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        row = conn.execute(f"SELECT {function}(%s, hashtext(%s))".encode(),
                           (LOCK_SPACE, key)).fetchone()
        if row and row[0]:
            return
        holders = conn.execute(
            "SELECT a.pid, a.application_name FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid = %s::int4::oid AND l.objid = hashtext(%s)::oid "
            "AND l.pid <> pg_backend_pid() ORDER BY a.pid", (LOCK_SPACE, key)).fetchall()
        described = "; ".join(f"{name or 'unknown process'}, session {pid}"
                              for pid, name in holders) or "session unknown"
        raise Busy(f"flow {key} is already running in another process ({described}); "
                   "this run stops without acting")

    # --- cursors ----------------------------------------------------------------------------

    def get_cursor(self, flow: str) -> str | None:
        rows = self._read("SELECT value FROM cursors WHERE flow = %s", (flow,))
        return str(rows[0][0]) if rows else None

    def set_cursor(self, flow: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO cursors (flow, value, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (flow) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at", (flow, value, _stamp(self._now())))

    # --- ledger -----------------------------------------------------------------------------

    def begin(self, key: str, *, flow: str, order_id: str, action: str,
              summary: str) -> LedgerEntry:
        """Record the intent to run an action, unless its key is known: then return the
        existing entry untouched (check its status before sending anything).

        Two processes beginning one key at once: the second INSERT waits for the first's
        commit and then does nothing, so exactly one of them sees `new`."""
        now = _stamp(self._now())
        with self._write() as conn:
            inserted = conn.execute(
                f"INSERT INTO ledger ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, 'pending', 0, 1, "
                "NULL, NULL, %s, %s, NULL) ON CONFLICT (idem_key) DO NOTHING".encode(),
                (key, flow, order_id, action, summary, now, now)).rowcount == 1
            row = conn.execute(f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = %s".encode(),
                               (key,)).fetchone()
        assert row is not None  # inserted, or there already
        entry = _entry(row, new=inserted)
        if (entry.flow, entry.order_id, entry.action) != (flow, order_id, action):
            raise ConnectorError(
                f"idempotency key {key} already records {entry.flow}/{entry.order_id}/"
                f"{entry.action}, not {flow}/{order_id}/{action}")
        return entry

    def retry(self, key: str) -> LedgerEntry:
        """Back to `pending` before sending a failed or parked action again."""
        return self._update(key, "status = 'pending'", (), "status IN ('failed', 'parked')")

    def complete(self, key: str, outputs: dict[str, Any]) -> LedgerEntry:
        """Mark the action done with its step outputs; a done entry keeps its first outputs.
        Non-JSON outputs are stored as their string form (the action has happened)."""
        now = _stamp(self._now())
        document = json.dumps(outputs, sort_keys=True, default=str)
        return self._update(key, "status = 'done', outputs = %s, completed_at = %s",
                            (document, now), "status <> 'done'")

    def fail(self, key: str, error: str, *, retryable: bool) -> LedgerEntry:
        """Record a failed attempt. A done or parked entry is left as it is."""
        return self._update(key, "status = 'failed', error = %s, retryable = %s, "
                            "attempts = attempts + 1", (error, int(retryable)),
                            "status IN ('pending', 'failed')")

    def park(self, key: str, reason: str) -> LedgerEntry:
        """Set an action aside for a person (not retried automatically). Done stays done."""
        return self._update(key, "status = 'parked', error = %s", (reason,), "status <> 'done'")

    def _update(self, key: str, assignments: str, params: tuple[Any, ...],
                allowed: str) -> LedgerEntry:
        with self._write() as conn:
            conn.execute(f"UPDATE ledger SET {assignments}, updated_at = %s "
                         f"WHERE idem_key = %s AND {allowed}".encode(),
                         (*params, _stamp(self._now()), key))
            row = conn.execute(f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = %s".encode(),
                               (key,)).fetchone()
        if row is None:
            raise KeyError(f"no ledger entry for idempotency key {key}")
        return _entry(row)

    def entry(self, key: str) -> LedgerEntry | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM ledger WHERE idem_key = %s", (key,))
        return _entry(rows[0]) if rows else None

    def entries(self, flow: str, status: Status) -> list[LedgerEntry]:
        rows = self._read(f"SELECT {_COLUMNS} FROM ledger WHERE flow = %s AND status = %s "
                          "ORDER BY created_at, idem_key", (flow, status))
        return [_entry(row) for row in rows]

    def pending_entries(self, flow: str) -> list[LedgerEntry]:
        return self.entries(flow, "pending")

    def failed_entries(self, flow: str) -> list[LedgerEntry]:
        return self.entries(flow, "failed")

    def outputs(self, flow: str, order_id: str) -> dict[str, dict[str, Any]]:
        """Outputs of the order's done actions by action name; the latest completion wins."""
        rows = self._read("SELECT action, outputs FROM ledger WHERE flow = %s AND order_id = %s "
                          "AND status = 'done' ORDER BY completed_at, created_at",
                          (flow, order_id))
        return {action: json.loads(outputs or "{}") for action, outputs in rows}

    # --- watch list -------------------------------------------------------------------------

    def watch(self, flow: str, order_id: str, until_iso: str, payload_json: str) -> None:
        until = normalise_iso(until_iso)
        with self._write() as conn:
            conn.execute("INSERT INTO watch (flow, order_id, until_at, payload) "
                         "VALUES (%s, %s, %s, %s) ON CONFLICT (flow, order_id) DO UPDATE SET "
                         "until_at = excluded.until_at, payload = excluded.payload",
                         (flow, order_id, until, payload_json))

    def watched(self, flow: str, now_iso: str) -> list[tuple[str, str]]:
        """(order id, payload) of the flow's watched orders; expired ones are dropped."""
        now = normalise_iso(now_iso)
        with self._write() as conn:
            conn.execute("DELETE FROM watch WHERE flow = %s AND until_at <= %s", (flow, now))
            rows = conn.execute("SELECT order_id, payload FROM watch WHERE flow = %s "
                                "ORDER BY order_id", (flow,)).fetchall()
        return [(str(order_id), str(payload)) for order_id, payload in rows]

    def unwatch(self, flow: str, order_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM watch WHERE flow = %s AND order_id = %s", (flow, order_id))


def _entry(row: Sequence[Any], *, new: bool = False) -> LedgerEntry:
    """A ledger row in `_COLUMNS` order."""
    (key, flow, order_id, action, summary, status, attempts, retryable, error, outputs,
     created_at, updated_at, completed_at) = row
    return LedgerEntry(
        key=key, flow=flow, order_id=order_id, action=action, summary=summary, status=status,
        attempts=attempts, retryable=bool(retryable), error=error,
        outputs=json.loads(outputs) if outputs is not None else None,
        created_at=created_at, updated_at=updated_at, completed_at=completed_at, new=new)
