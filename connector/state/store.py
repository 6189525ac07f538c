"""The record stage: a durable store of cursors, the idempotency ledger and the watch list.

Exactly-once execution rests on this store. The record stage (`connector.record`, the one
module that writes here during a run) records an action's intent (`begin`, status `pending`)
before sending it and its outcome (`complete`, `fail`, `park`) after; a key that is `done`
is never sent again, and a `pending` key left by a crash is settled by reading the target,
never by resending. So every write is its own committed transaction on a WAL database
with `synchronous=FULL`: once a method returns, a `kill -9` or a power cut cannot lose it. A write that fails raises `ConnectorError`; it is never
swallowed, because an unrecorded outcome is how actions get sent twice.

SQLite is the default; the PostgreSQL store (`connector.state.postgres`, for many workers) shares the
schema: it lives in versioned, portable SQL files (`connector/state/migrations/<dialect>/NNNN_name.sql`)
applied in order and recorded in `schema_version`. Sharing the schema lets both stores share
their statements too: `state_sql.SqlStore` holds them once, and each store adds only its
connection handling, migration runner and run lock.

`lock` keeps two processes (an overlapping cron run of `apply`, two workers) from running one
flow partition at once: an OS file lock here, an advisory lock in PostgreSQL. Both are
released by the operating system or the server when the holder dies, so a crashed run never
blocks the next one, which settles the crashed run's pending ledger entries.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from connector.errors import Busy, ConnectorError
from connector.timestamps import parse_iso

if TYPE_CHECKING:
    from connector.fence import Fence, Lease
    from connector.state.batches import BatchRecord, BatchStatus
    from connector.state.leases import Writer
    from typing_extensions import Self  # typing.Self is Python 3.11+; only the type checker reads it

#: `settled`: a write whose outcome was unknown, that a fresh read showed is not called for.
Status = Literal["pending", "done", "failed", "parked", "settled"]


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
    partition: str = ""  # the flow partition whose run began it ("" for a whole-flow run)
    lease_key: str = ""  # the lease of the run that recorded the intent (connector.fence)
    lease_epoch: int = 0
    owner: str = ""


@dataclass(frozen=True)
class RunRecord:
    """The last run of one flow partition, as `connector status` reports it."""

    flow: str
    partition: str
    started_at: str
    duration_seconds: float
    outcome: str  # ok | failed | error
    counts: dict[str, int]


@dataclass(frozen=True)
class Watched:
    """An order on a flow partition's watch list: read again each run until `until`."""

    flow_key: str
    order_id: str
    until: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class QueuedOrder:
    """An order a notification queued for its flow partition's next run."""

    flow: str
    partition: str
    order_id: str
    version: int  # bumped by each further notification; `dequeue` removes only this one


class StateStore(Protocol):
    """What the engine needs from a state store (SQLite, or PostgreSQL for many workers)."""

    def get_cursor(self, flow: str) -> str | None: ...
    def set_cursor(self, flow: str, value: str) -> None: ...
    def begin(self, key: str, *, flow: str, order_id: str, action: str,
              summary: str, partition: str = "") -> LedgerEntry: ...
    def retry(self, key: str) -> LedgerEntry: ...
    def unpark(self, key: str) -> LedgerEntry: ...
    def settle(self, key: str, reason: str) -> LedgerEntry: ...
    def complete(self, key: str, outputs: dict[str, Any]) -> LedgerEntry: ...
    def fail(self, key: str, error: str, *, retryable: bool) -> LedgerEntry: ...
    def park(self, key: str, reason: str) -> LedgerEntry: ...
    def entry(self, key: str) -> LedgerEntry | None: ...
    def entries(self, flow: str, status: Status) -> list[LedgerEntry]: ...
    def order_entries(self, order_or_key: str) -> list[LedgerEntry]: ...
    def pending_entries(self, flow: str) -> list[LedgerEntry]: ...
    def failed_entries(self, flow: str) -> list[LedgerEntry]: ...
    def outputs(self, flow: str, order_id: str) -> dict[str, dict[str, Any]]: ...
    def watch(self, flow: str, order_id: str, until_iso: str, payload_json: str) -> None: ...
    def watched(self, flow: str, now_iso: str) -> list[tuple[str, str]]: ...
    def unwatch(self, flow: str, order_id: str) -> None: ...
    def watch_list(self, flow: str, now_iso: str) -> list[Watched]: ...
    def cursors(self, flow: str) -> list[tuple[str, str, str]]: ...
    def record_run(self, run: RunRecord) -> None: ...
    def runs(self, flow: str) -> list[RunRecord]: ...
    def enqueue(self, orders: Sequence[tuple[str, str, str]]) -> None: ...
    def queued(self, flow: str, partition: str | None = None) -> list[QueuedOrder]: ...
    def dequeue(self, order: QueuedOrder) -> None: ...
    def open_batch(self, batch_id: str, *, flow_key: str, action: str,
                   context: dict[str, Any], keys: Sequence[str]) -> None: ...
    def save_batch(self, batch_id: str, *, status: BatchStatus, step: int, polls: int,
                   outputs: dict[str, Any], check_after: datetime | None = None) -> None: ...
    def batch_of(self, key: str) -> str | None: ...
    def live_batches(self, flow_key: str) -> list[BatchRecord]: ...
    def take_token(self, bucket: str, *, rate: float, burst: int, now: float) -> float: ...
    def drain_bucket(self, bucket: str, *, rate: float, burst: int, now: float) -> None: ...
    def lock(self, key: str, *, within: str | None = None) -> AbstractContextManager[None]: ...
    def fenced(self, fence: Fence) -> Self: ...
    def take_lease(self, key: str, owner: str) -> Lease: ...
    def check_lease(self, lease: Lease) -> None: ...
    def release_lease(self, lease: Lease) -> None: ...
    def pending_writer(self, entry: LedgerEntry) -> Writer: ...
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
        moment = parse_iso(value)
    except (AttributeError, ValueError):
        raise ConnectorError(f"not an ISO-8601 timestamp: {value!r}") from None
    return _stamp(moment)


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of the packaged migrations for `dialect`, in order."""
    folder = resources.files("connector.state") / "migrations" / dialect
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


def _hide_password(url: str) -> str:
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


def open_store(url: str, *, now: Callable[[], datetime] = _utcnow) -> StateStore:
    """Open the store a state URL names: `sqlite:///relative/path.db`,
    `sqlite:////absolute/path.db` (as SQLAlchemy spells them), `sqlite:///:memory:`, or
    `postgresql://user:password@host:port/database` (`postgres://` too; a SQLAlchemy driver
    suffix such as `postgresql+psycopg://` is accepted and dropped)."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        from connector.state.sqlite import SQLiteStore

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
            from connector.state.postgres import PostgresStore
        except ImportError:
            raise ConnectorError("a PostgreSQL state store needs psycopg: "
                                 "pip install 'connector[postgres]'") from None
        return PostgresStore("postgresql" + url[len(scheme):], now=now)
    raise ConnectorError(f"unsupported state URL {_hide_password(url)!r}: use "
                         "sqlite:///path/to/state.db or postgresql://…")
