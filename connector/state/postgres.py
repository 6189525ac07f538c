"""The PostgreSQL state store: the same contract as `SQLiteStore`, shared by many workers.

Why PostgreSQL: a fleet of workers on several machines needs one store that they can all
reach and that serialises their writes; it also carries the task queue (procrastinate), so
one system serves as both. The semantics are SQLite's, method for method: every write is
its own committed transaction (`synchronous_commit` is left on, so an acknowledged write
survives a crash), a failed write raises `ConnectorError("state store write failed: …")`,
timestamps are stamped here in Python in the same fixed-width text form, and the tables come
from the versioned files in `connector/state/migrations/postgresql/`.

The engine calls the store from a thread pool, so connections come from a small pool
(psycopg_pool): each call borrows one for its transaction. Run exclusion (`lock`) uses
session advisory locks on a dedicated connection, which the server releases by itself when
the holding process dies or its connection drops.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from connector.errors import ConnectorError
from connector.state.store import Busy, _hide_password, _utcnow
from connector.state.leases import takeover_grace
from connector.state.sql import SqlStore

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


@lru_cache(maxsize=64)
def _dialect(sql: str) -> bytes:
    """`SqlStore`'s `?`-style statement in psycopg's `%s` style (a literal `%` doubled).

    Bytes, because psycopg's type hints accept only literal strings as queries, and these
    are built at run time from fixed fragments. Cached: the store runs a few dozen distinct
    statements, over and over."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


class _Translating:
    """A psycopg connection as `SqlStore` sees it: an `Executor` taking `?` placeholders."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...], /) -> psycopg.Cursor[Any]:
        # No parameters: sent as it is, with none, as psycopg then leaves `%` alone.
        if not params:
            return self._conn.execute(sql.encode())
        return self._conn.execute(_dialect(sql), params)


def _application_name() -> str:
    """Shown in pg_stat_activity, and so in another process's `Busy` message."""
    return f"connector pid {os.getpid()} on {socket.gethostname()}"[:63]


class PostgresStore(SqlStore):
    """The PostgreSQL state store; `url` is a libpq URL (`postgresql://user@host/db`).

    The statements (cursors, ledger, watch list) are `SqlStore`'s, shared with SQLite and
    translated to psycopg's placeholders; this class supplies the connection pool, the
    migration runner and the advisory locks."""

    # A write's lease check share-locks the lease row: a take-over waits for the write's
    # commit, and sees what it wrote.
    _ROW_LOCK = " FOR SHARE"
    #: An advisory lock is lost when its session ends, which a living process may not notice
    #: until its next check: its request that passed the check just before a take-over may
    #: land up to the transport's timeouts (5 s connect, 30 s read) later, and a margin.
    takeover_grace = 60.0

    def __init__(self, url: str, *, now: Callable[[], datetime] = _utcnow,
                 pool_size: int = 8, environ: Mapping[str, str] | None = None) -> None:
        # CONNECTOR_TAKEOVER_GRACE_SECONDS: longer where requests may take longer to land
        self.takeover_grace = takeover_grace(os.environ if environ is None else environ,
                                             type(self).takeover_grace)
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
        with psycopg.connect(self._url, connect_timeout=15,
                             application_name=_application_name()) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (MIGRATION_LOCK,))
            # A file is sent as it is, with no parameters: one multi-statement query.
            self._apply_migrations(_Translating(conn), "postgresql", self._shown,
                                   lambda sql: conn.execute(sql.encode()))
            # leaving the block commits (or rolls back on error), releasing the lock

    @contextmanager
    def _transaction(self) -> Iterator[_Translating]:
        """One committed transaction; any failure rolls back and raises ConnectorError."""
        try:
            with self._pool.connection() as conn:  # commits on success, rolls back on error
                yield _Translating(conn)
        except psycopg.Error as exc:
            raise ConnectorError(f"state store write failed: {_message(exc)}") from exc

    @contextmanager
    def _bucket_write(self) -> Iterator[_Translating]:
        """A token-bucket update as an asynchronous commit (this transaction only): no wait
        for the WAL flush, since a lost bucket update costs a few early requests at worst."""
        with self._transaction() as conn:
            conn.execute("SET LOCAL synchronous_commit TO OFF", ())
            yield conn

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                return _Translating(conn).execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise ConnectorError(f"state store read failed: {_message(exc)}") from exc

    def close(self) -> None:
        self._pool.close()

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
