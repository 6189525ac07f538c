"""`connector retry ID…`: a person says the cause of a parked action is fixed.

An action that failed `max_attempts` times is parked: no run sends it again on its own.
Retrying un-parks it (a failure with no attempts counted, so the retry budget starts afresh
and no backoff applies) and queues its order for the next run of its flow partition, which
reads the order again and sends only what the fresh state still calls for (the same
idempotency key), so a retry can never repeat an effect. `apply --order ID` runs it now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from connector import runner
from connector.errors import UsageError
from connector.validate import checked
from connector.state.store import LedgerEntry


def run(root: Path, ids: Sequence[str], flow: str | None, out: TextIO,
        environ: Mapping[str, str] | None = None) -> int:
    env = runner.environment(environ)
    config = checked(root)
    names = set(runner.select_flows(config, flow))
    store = runner.open_run_store(runner.state_url(root, config, env), read_only=True)
    if store is None:
        raise UsageError("nothing is parked: the state store does not exist yet")
    with store:
        found: dict[str, list[LedgerEntry]] = {}
        for order_or_key in ids:
            entries = [entry for entry in store.order_entries(order_or_key)
                       if entry.flow in names]
            parked = [entry for entry in entries if entry.status == "parked"]
            if not parked:
                raise UsageError(f"{order_or_key}: nothing parked{_instead(entries)}")
            found[order_or_key] = parked
        for parked in found.values():  # every ID checked first: all or nothing is un-parked
            for entry in parked:
                store.unpark(entry.key)
                out.write(f"{entry.order_id}: {entry.action} ({entry.flow}): un-parked\n")
            store.enqueue(sorted({(entry.flow, entry.partition, entry.order_id)
                                  for entry in parked}))
        for flow_name, order in sorted({(e.flow, e.order_id) for p in found.values() for e in p}):
            out.write(f"{order}: queued for the next run of {flow_name} "
                      f"(now: connector apply --flow {flow_name} --order {order})\n")
    return 0


def _instead(entries: Sequence[LedgerEntry]) -> str:
    """What the ledger holds for an ID that has nothing parked, so the person is not left
    guessing whether it was a typo."""
    if not entries:
        return " (the ledger knows no order or idempotency key by that name)"
    statuses = sorted({f"{entry.action}: {entry.status}" for entry in entries})
    return f" ({'; '.join(statuses)})"
