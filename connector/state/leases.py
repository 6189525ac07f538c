"""The lease statements (fencing, see `connector.fence`), shared by both stores as
`SqlStore`'s are: taking a partition's lease, checking it, and the check every write of a
fenced store view makes in its own transaction.

A run's store is a *view* of the process's store (`fenced`): the same connection or pool,
with the run's `Fence`. Each write of the view runs `_CHECK` first in its transaction: the
lease row is read (and, in PostgreSQL, share-locked, so that a take-over waits for the
write to commit and then sees it), and a moved epoch raises `LeaseLost` before anything is
written. The process's own store (the CLI's, the worker's, the token buckets) is unfenced.
"""

from __future__ import annotations

import copy
import math
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from connector.errors import LeaseLost, UsageError
from connector.fence import Fence, Lease
from connector.state.store import _stamp

if TYPE_CHECKING:
    from typing_extensions import Self

    from connector.state.store import LedgerEntry

#: What a pending entry's writer may still be doing, as `pending_writer` tells it:
#: `mine` (this run's own), `live` (its writer holds its lease, or passed its check so
#: recently that its request may still land), `recent` (fenced off since this run took
#: over: settle by reading now), `gone` (fenced off before this run began: this run's
#: reads are newer than any request of it).
Writer = Literal["mine", "live", "recent", "gone"]


#: The environment variable that sets the take-over grace of a PostgreSQL store (seconds).
GRACE_SETTING = "CONNECTOR_TAKEOVER_GRACE_SECONDS"
#: Below this a request that passed its lease check just before a take-over could still
#: land after the grace (the transport's 5 s connect and 30 s read timeouts).
MIN_GRACE = 35.0
MAX_GRACE = 86400.0


def takeover_grace(environ: Mapping[str, str], default: float) -> float:
    """`CONNECTOR_TAKEOVER_GRACE_SECONDS`, else `default`: how long after a take-over the
    new run leaves the previous holder's pending entries alone (they may still be in
    flight). Refused unless a number of seconds from `MIN_GRACE` to a day: a shorter grace
    could settle an entry whose request lands afterwards, which then is sent twice."""
    raw = environ.get(GRACE_SETTING, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not MIN_GRACE <= value <= MAX_GRACE:
        raise UsageError(f"{GRACE_SETTING}={raw[:40]!r}: give a number of seconds from "
                         f"{MIN_GRACE:g} to {MAX_GRACE:g} (default {default:g}): the time a "
                         "request that passed its lease check before a take-over may still "
                         "take to land (the transport's connect and read timeouts are 5 and "
                         "30 s)")
    return value


class _Executor(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...], /) -> Any: ...


def owner_name(run: str) -> str:
    """Who holds a lease, for messages: the process, its machine and the run."""
    return f"pid {os.getpid()} on {socket.gethostname()}, run {run}"[:200]


class LeaseRecords:
    """Leases and the fenced write, on top of the store's `_transaction` and `_read`."""

    _now: Callable[[], datetime]
    _fence: Fence | None = None
    #: Seconds after a take-over during which the previous holder's request may still land:
    #: 0 where a free lock proves the holder dead (a file lock), the transport's connect and
    #: read timeouts and a margin where a lock can be lost by a living process (PostgreSQL).
    takeover_grace: float = 0.0
    _ROW_LOCK = ""  # PostgreSQL: " FOR SHARE"

    def _read(self, sql: str, params: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[_Executor]:
        raise NotImplementedError

    @contextmanager
    def _write(self) -> Iterator[_Executor]:
        """One committed transaction that, in a fenced view, first checks the run's lease."""
        with self._transaction() as conn:
            lease = self._fence.lease if self._fence is not None else None
            if lease is not None:
                row = conn.execute("SELECT epoch, owner FROM leases WHERE flow_key = ?"
                                   + self._ROW_LOCK, (lease.key,)).fetchone()
                if row is None or int(row[0]) != lease.epoch:
                    lost = _lost(lease, row)
                    if self._fence is not None:
                        self._fence.lose(lost)
                    raise lost
            yield conn

    def fenced(self, fence: Fence) -> Self:
        """This store as one run sees it: the same connection(s); every write checks
        `fence`'s lease once the run has taken one (`take_lease`)."""
        view = copy.copy(self)
        view._fence = fence
        fence.check_with = self.check_lease
        return view

    def take_lease(self, key: str, owner: str) -> Lease:
        """Take `key`'s lease (the caller holds its run lock): the epoch goes up by one, so
        the previous holder's writes and requests fail from now on, and pending entries it
        left are not settled before `fence_until` (now + `takeover_grace`, unless it released
        its lease at its run's end: then nothing of it is in flight). A whole flow's lease
        (`flow`) takes its partitions' (`flow@P`) unreleased leases over too, and the reverse."""
        moment = self._now()
        now, fence = _stamp(moment), _stamp(moment + timedelta(seconds=self.takeover_grace))
        with self._transaction() as conn:
            row = conn.execute(
                "INSERT INTO leases (flow_key, epoch, owner, taken_at, fence_until) "
                "VALUES (?, 1, ?, ?, ?) ON CONFLICT (flow_key) DO UPDATE SET "
                "epoch = leases.epoch + 1, owner = excluded.owner, taken_at = excluded.taken_at, "
                "released = 0, fence_until = CASE WHEN leases.released = 1 OR "
                "leases.fence_until > ? THEN leases.fence_until ELSE ? END "
                "RETURNING epoch, fence_until",
                (key, owner, now, now, fence, fence)).fetchone()
            # A whole-flow run and a partition run of one flow exclude each other by their
            # locks only: the other kind's unreleased leases are taken over too (their holder
            # lost its lock, or it would hold ours off), so that such a run is fenced off.
            flow, _, partition = key.partition("@")
            conn.execute(
                "UPDATE leases SET epoch = epoch + 1, fence_until = CASE WHEN fence_until > ? "
                "THEN fence_until ELSE ? END WHERE released = 0 AND "
                + ("flow_key = ?" if partition else "substr(flow_key, 1, ?) = ?"),
                (now, fence, flow) if partition else (now, fence, len(flow) + 1, flow + "@"))
        lease = Lease(key, int(row[0]), owner, now, str(row[1]))
        if self._fence is not None:
            self._fence.lease, self._fence.lost = lease, None
        return lease

    def release_lease(self, lease: Lease) -> None:
        """The run ended and nothing of it is in flight: a later take-over need not wait
        for its requests (a lease taken over since is left as it is)."""
        with self._transaction() as conn:
            conn.execute("UPDATE leases SET released = 1 WHERE flow_key = ? AND epoch = ?",
                         (lease.key, lease.epoch))

    def check_lease(self, lease: Lease) -> None:
        """Raise `LeaseLost` unless `lease` is still its key's (before a mutating request)."""
        rows = self._read("SELECT epoch, owner FROM leases WHERE flow_key = ?", (lease.key,))
        row = rows[0] if rows else None
        if row is None or int(row[0]) != lease.epoch:
            raise _lost(lease, row)

    def pending_writer(self, entry: LedgerEntry) -> Writer:
        """What the writer of a pending `entry` may still be doing, seen by this view's run
        (see `Writer`). An entry written before leases existed is `gone`."""
        lease = self._fence.lease if self._fence is not None else None
        if not entry.lease_key:
            return "gone"
        if lease is not None and (entry.lease_key, entry.lease_epoch) == (lease.key, lease.epoch):
            return "mine"
        rows = self._read("SELECT epoch, fence_until, released FROM leases WHERE flow_key = ?",
                          (entry.lease_key,))
        if not rows:
            return "gone"
        epoch, fence_until = int(rows[0][0]), str(rows[0][1])
        if epoch == entry.lease_epoch:
            # its writer holds that lease still (another key's run), or ended and released it
            return "gone" if int(rows[0][2] or 0) else "live"
        if lease is not None and fence_until <= lease.taken_at:
            return "gone"
        return "recent" if _stamp(self._now()) >= fence_until else "live"


def _lost(lease: Lease, row: Sequence[Any] | None) -> LeaseLost:
    holder = f"epoch {row[0]}, {row[1]}" if row is not None else "none"
    return LeaseLost(f"flow {lease.key}: this run's lease (epoch {lease.epoch}) was taken over "
                     f"by another process ({holder}): the run stops before its next request; "
                     "what it had in flight is settled by reading")
