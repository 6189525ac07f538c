"""The queue of orders that notifications name (`connector.notify`), in the state store:
written in one transaction before the notification is deleted, so a crash between the two
redelivers it and nothing is lost; a run deals with each queued order once per version."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from connector.state.store import QueuedOrder, _stamp


class _Executor(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...], /) -> Any: ...


class QueueRecords:
    """The queue statements, shared by both stores as `SqlStore`'s are."""

    _now: Callable[[], datetime]

    def _read(self, sql: str, params: tuple[Any, ...]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[_Executor]:
        raise NotImplementedError

    def enqueue(self, orders: Sequence[tuple[str, str, str]]) -> None:
        """Queue (flow, partition, order id) rows in one transaction: committed when this
        returns, so the notification that named them may be deleted. An order queued
        already gets a new version (its run re-reads it once more)."""
        now = _stamp(self._now())
        with self._write() as conn:
            for flow, partition, order_id in orders:
                conn.execute(
                    "INSERT INTO order_queue (flow, partition_key, order_id, version, queued_at) "
                    "VALUES (?, ?, ?, 1, ?) ON CONFLICT (flow, partition_key, order_id) DO "
                    "UPDATE SET version = order_queue.version + 1, queued_at = excluded.queued_at",
                    (flow, partition, order_id, now))

    def queued(self, flow: str, partition: str | None = None) -> list[QueuedOrder]:
        """The flow's queued orders of one partition (every partition's when None: a run of
        the whole flow), oldest first."""
        where, params = ("flow = ?", (flow,)) if partition is None else (
            "flow = ? AND partition_key = ?", (flow, partition))
        rows = self._read("SELECT flow, partition_key, order_id, version FROM order_queue "
                          f"WHERE {where} ORDER BY queued_at, order_id", params)
        return [QueuedOrder(str(f), str(p), str(o), int(v)) for f, p, o, v in rows]

    def dequeue(self, order: QueuedOrder) -> None:
        """Remove a queued order its run has dealt with, unless notified again since."""
        with self._write() as conn:
            conn.execute("DELETE FROM order_queue WHERE flow = ? AND partition_key = ? AND "
                         "order_id = ? AND version = ?",
                         (order.flow, order.partition, order.order_id, order.version))
