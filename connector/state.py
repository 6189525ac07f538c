"""The record stage: a durable store of cursors, the idempotency ledger and the watch list.

Exactly-once execution rests on this store. The engine records an action's intent
(`begin`, status `pending`) before sending it and its outcome (`complete`, `fail`, `park`)
after; a key that is `done` is never sent again, and a `pending` key left by a crash is
settled by reading the target, never by resending. So every write is its own committed
transaction on a WAL database with `synchronous=FULL`: once a method returns, a `kill -9`
or a power cut cannot lose it. A write that fails raises `ConnectorError`; it is never
swallowed, because an unrecorded outcome is how actions get sent twice.

SQLite is the default; the PostgreSQL store (`state_postgres`, for many workers) shares the
schema: it lives in versioned, portable SQL files (`connector/migrations/<dialect>/NNNN_name.sql`)
applied in order and recorded in `schema_version`.

`lock` keeps two processes (an overlapping cron run of `apply`, two workers) from running one
flow partition at once: an OS file lock here, an advisory lock in PostgreSQL. Both are
released by the operating system or the server when the holder dies, so a crashed run never
blocks the next one, which settles the crashed run's pending ledger entries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from connector.errors import ConnectorError

if TYPE_CHECKING:
    from typing import Self  # Python 3.11+, only needed by the type checker

Status = Literal["pending", "done", "failed", "parked"]

_COLUMNS = ("idem_key, flow, order_id, action, summary, status, attempts, retryable, error, "
            "outputs, created_at, updated_at, completed_at")


@dataclass(frozen=True)
class LedgerEntry:
    """One idempotency key's record. `new` is True only on the `begin` call that created
    it, so the engine can tell its own fresh intent from a `pending` left by a crash."""

    key: str
    flow: str
    order_id: str
    action: str
    summary: str
    status: Status
    attempts: int  # failed attempts so far
    retryable: bool  # of the last failure
    error: str | None
    outputs: dict[str, Any] | None
    created_at: str
    updated_at: str
    completed_at: str | None
    new: bool = False


class Busy(ConnectorError):
    """Another process runs this flow partition: this run stops without acting. Exit code 1,
    as for failures: the configuration is fine, and the holder or the next run does the work."""

    exit_code = 1


class StateStore(Protocol):
    """What the engine needs from a state store (SQLite, or PostgreSQL for many workers)."""

    def get_cursor(self, flow: str) -> str | None: ...
    def set_cursor(self, flow: str, value: str) -> None: ...
    def begin(self, key: str, *, flow: str, order_id: str, action: str,
              summary: str) -> LedgerEntry: ...
    def retry(self, key: str) -> LedgerEntry: ...
    def complete(self, key: str, outputs: dict[str, Any]) -> LedgerEntry: ...
    def fail(self, key: str, error: str, *, retryable: bool) -> LedgerEntry: ...
    def park(self, key: str, reason: str) -> LedgerEntry: ...
    def entry(self, key: str) -> LedgerEntry | None: ...
    def entries(self, flow: str, status: Status) -> list[LedgerEntry]: ...
    def pending_entries(self, flow: str) -> list[LedgerEntry]: ...
    def failed_entries(self, flow: str) -> list[LedgerEntry]: ...
    def outputs(self, flow: str, order_id: str) -> dict[str, dict[str, Any]]: ...
    def watch(self, flow: str, order_id: str, until_iso: str, payload_json: str) -> None: ...
    def watched(self, flow: str, now_iso: str) -> list[tuple[str, str]]: ...
    def unwatch(self, flow: str, order_id: str) -> None: ...
    def lock(self, key: str, *, within: str | None = None) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601, so stored timestamps compare correctly as strings."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalise_iso(value: str) -> str:
    """Any ISO-8601 timestamp as the stored form; a naive one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise ConnectorError(f"not an ISO-8601 timestamp: {value!r}") from None
    return _stamp(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of the packaged migrations for `dialect`, in order."""
    folder = resources.files("connector") / "migrations" / dialect
    found = []
    for item in folder.iterdir():
        match = re.fullmatch(r"(\d+)_\w+\.sql", item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (semicolons inside strings are respected)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    rest = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if rest:
        raise ConnectorError(f"migration ends with an incomplete statement: {rest[0]!r}")


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


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


def open_store(url: str, *, now: Callable[[], datetime] = _utcnow) -> StateStore:
    """Open the store a state URL names: `sqlite:///relative/path.db`,
    `sqlite:////absolute/path.db` (as SQLAlchemy spells them), `sqlite:///:memory:`, or
    `postgresql://user:password@host:port/database` (`postgres://` too; a SQLAlchemy driver
    suffix such as `postgresql+psycopg://` is accepted and dropped)."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix):]
        if not path or "?" in path or "#" in path:
            raise ConnectorError(f"state URL {url!r} does not name a database file: use "
                                 "sqlite:///path/to/state.db")
        if path == ":memory:":
            return SQLiteStore(path, now=now)
        file = Path(path).expanduser()
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConnectorError(f"cannot create the directory of state store {file}: "
                                 f"{exc.strerror or exc}") from exc
        return SQLiteStore(str(file), now=now)
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        try:
            from connector.state_postgres import PostgresStore
        except ImportError:
            raise ConnectorError("a PostgreSQL state store needs psycopg: "
                                 "pip install 'connector[postgres]'") from None
        return PostgresStore("postgresql" + url[len(scheme):], now=now)
    raise ConnectorError(f"unsupported state URL {_hide_password(url)!r}: use "
                         "sqlite:///path/to/state.db or postgresql://…")
