"""The run's side of notifications: the orders queued for a flow partition, read by id.

A run takes them beside its listing (an order both listed and queued is evaluated once, from
the listing's record) and removes each row once the order is recorded (done, failed and
watched, or watched), by the version it read: an order notified again meanwhile stays queued
for the next run. Evaluation is idempotent, so an order queued twice costs one read, never a
second action.
"""

from __future__ import annotations

from typing import Any

from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError, LeaseLost
from connector.fetch import get_order
from connector.state.store import QueuedOrder, StateStore
from connector.summary import Summary


def take_queued(store: StateStore, source: SystemClient, flow: str, partition: str,
                records: dict[str, dict[str, Any] | None], summary: Summary) -> list[QueuedOrder]:
    """Add to `records` (every order of the run by id, with its raw record when it is still
    to be evaluated) the orders queued for `partition` (every
    partition's when "", a run of the whole flow) that the listing did not bring; return the
    queue rows this run deals with. A row whose read fails stays queued (the next run tries
    again); an order the source does not know is reported and its row dropped."""
    taken: list[QueuedOrder] = []
    for item in store.queued(flow, partition or None):
        if item.order_id not in records:
            try:
                raw = get_order(source, item.order_id)
            except LeaseLost:
                raise
            except (HTTPError, ConnectorError) as exc:
                summary.tally("failed", item.order_id, f"notified, but reading it failed: {exc}")
                continue
            if raw is None:
                summary.note("attention", f"{item.order_id}: notified, but "
                             f"{source.system.name} does not know the order; dropped")
                taken.append(item)
                continue
            records[item.order_id] = raw
        taken.append(item)
    summary.add(notified=len(taken))
    return taken
