"""The SQLite state store (the default): one file, WAL, `synchronous=FULL`, a file lock per run.

The contract, its semantics and the reasons behind them are in `connector.state.store`; this
module is the single-machine implementation. Every write is its own committed transaction,
so a `kill -9` cannot lose an acknowledged write, and the run lock is an OS file lock that
the kernel releases when its holder dies.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from connector.errors import ConnectorError
from connector.state.store import Busy, _statements, _utcnow
from connector.state.sql import SqlStore


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


class SQLiteStore(SqlStore):
    """The SQLite state store: one connection shared by the worker threads, behind a lock.

    The connection is in autocommit mode and each write runs `BEGIN IMMEDIATE … COMMIT`
    itself, so no write lingers uncommitted in a Python-managed transaction. The statements
    themselves (cursors, ledger, watch list) are `SqlStore`'s, shared with PostgreSQL; this
    class supplies the connection, the migration runner and the file lock.
    """

    def __init__(self, path: str, *, now: Callable[[], datetime] = _utcnow) -> None:
        self._path = path
        self._now = now
        self._lock = threading.Lock()
        self._lock_dir: str | None = None  # lock files of a :memory: store
        self._buckets: sqlite3.Connection | None = None  # see _bucket_write
        self._buckets_lock = threading.Lock()
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
        """Apply the packaged migrations in one `BEGIN IMMEDIATE` transaction, so that two
        processes opening one file together neither race nor half-apply. A script runs
        statement by statement: `execute` takes one statement, and `executescript` would
        commit the open transaction first."""
        with self._transaction() as conn:
            def run_script(sql: str) -> None:
                for statement in _statements(sql):
                    conn.execute(statement)

            self._apply_migrations(conn, "sqlite", self._path, run_script)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
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

    @contextmanager
    def _bucket_write(self) -> Iterator[sqlite3.Connection]:
        """A token-bucket update on a connection of its own with `synchronous=NORMAL`: in WAL
        mode that skips the fsync per commit (the ledger's connection keeps FULL), and a
        request waiting for a token does not queue behind the engine's ledger writes. A
        `:memory:` database is one connection's own, so there the main connection serves."""
        if self._path == ":memory:":
            with self._transaction() as conn:
                yield conn
            return
        with self._buckets_lock:
            try:
                if self._buckets is None:
                    self._buckets = sqlite3.connect(self._path, timeout=30.0,
                                                    isolation_level=None,
                                                    check_same_thread=False)
                    self._buckets.execute("PRAGMA synchronous=NORMAL")
                conn = self._buckets
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._buckets is not None:
                    self._rollback(self._buckets)
                raise ConnectorError(f"state store write failed: {exc}") from exc
            except BaseException:
                if self._buckets is not None:
                    self._rollback(self._buckets)
                raise

    def _rollback(self, conn: sqlite3.Connection | None = None) -> None:
        conn = conn or self._conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the original error is the one worth reporting

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ConnectorError(f"state store read failed: {exc}") from exc

    def close(self) -> None:
        with self._buckets_lock:
            if self._buckets is not None:
                self._buckets.close()
                self._buckets = None
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
