"""The record stage for batched actions: where each batch stands, in the state store.

A batch's progress is written before and after its effect step (`connector.execute.batch`),
each write one committed transaction like every ledger write, so a run killed at any point
leaves a record that says what the next run may do: abandon and re-plan (nothing happened
yet), wait for the remote side, or settle by the mapping's recover step. Secrets never reach
it: the steps' context is stored without the settings, which the resuming run supplies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from connector.state.store import _stamp

BatchStatus = Literal["open", "sending", "unknown", "waiting", "done"]


@dataclass(frozen=True)
class BatchRecord:
    """One batch of one action, as stored: `step` is the index of the next step to send."""

    batch_id: str
    flow_key: str
    action: str  # system.action
    status: BatchStatus
    step: int
    polls: int
    outputs: dict[str, Any]
    context: dict[str, Any]
    check_after: str
    created_at: str


class _Executor(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...], /) -> Any: ...


_BATCH_COLUMNS = ("batch_id, flow_key, action, status, step, polls, outputs, context, "
                  "check_after, created_at")


class BatchRecords:
    """The batch statements, shared by both stores as `SqlStore`'s are."""

    _now: Callable[[], datetime]

    def _read(self, sql: str, params: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[_Executor]:
        raise NotImplementedError

    def open_batch(self, batch_id: str, *, flow_key: str, action: str,
                   context: dict[str, Any], keys: Sequence[str]) -> None:
        """Record a new batch and its members (positions 1…n, in `keys` order) at once."""
        now = _stamp(self._now())
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO batches ({_BATCH_COLUMNS}, updated_at) "
                "VALUES (?, ?, ?, 'open', 0, 0, '{}', ?, ?, ?, ?)",
                (batch_id, flow_key, action, json.dumps(context, default=str), now, now, now))
            for position, key in enumerate(keys, start=1):
                conn.execute("INSERT INTO batch_members (idem_key, batch_id, position) "
                             "VALUES (?, ?, ?)", (key, batch_id, position))

    def save_batch(self, batch_id: str, *, status: BatchStatus, step: int, polls: int,
                   outputs: dict[str, Any], check_after: datetime | None = None) -> None:
        """Where the batch stands now; `done` also frees its members' keys."""
        now = self._now()
        with self._write() as conn:
            conn.execute(
                "UPDATE batches SET status = ?, step = ?, polls = ?, outputs = ?, "
                "check_after = ?, updated_at = ? WHERE batch_id = ?",
                (status, step, polls, json.dumps(outputs, default=str),
                 _stamp(check_after or now), _stamp(now), batch_id))
            if status == "done":
                conn.execute("DELETE FROM batch_members WHERE batch_id = ?", (batch_id,))

    def batch_of(self, key: str) -> str | None:
        """The live batch holding the key, if any."""
        rows = self._read("SELECT batch_id FROM batch_members WHERE idem_key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def live_batches(self, flow_key: str) -> list[BatchRecord]:
        """The flow partition's batches not done, oldest first."""
        rows = self._read(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE flow_key = ? AND "
                          "status <> 'done' ORDER BY created_at, batch_id", (flow_key,))
        return [BatchRecord(str(b), str(f), str(a), s, int(st), int(p), json.loads(o),
                            json.loads(c), str(ca), str(cr))
                for b, f, a, s, st, p, o, c, ca, cr in rows]
