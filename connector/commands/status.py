"""`connector status`: what the state store says of each flow, without opening it by hand.

Per flow partition: the cursor, the last run (when, how long, how it ended, its counts) and
the orders on the watch list (until when, why); per flow: the actions failed (reason,
attempts, next try), parked (a person must act) and pending (outcome unknown; who settles it
by reading: the next run, which watches or lists its order, or a person who has its order
read with `apply --order`, when no run would). Exit 1 when anything is parked, so a cron job or a monitoring check can alert.
It reads only: no system is called and no setting is needed. `--sandbox` reads the store of
the last `apply --sandbox` (`.connector/sandbox.db`, runner.SANDBOX_STATE) instead of the
project's, so a newcomer can see what the sandbox run did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

from connector import runner
from connector.execute import RetryAcrossRuns
from connector.printable import printable
from connector.project import Config, load_config, require
from connector.state.store import LedgerEntry, StateStore
from connector.timestamps import parse_iso


@dataclass(frozen=True)
class Action:
    """A failed, parked or pending ledger entry, as status lists it."""

    order: str
    action: str
    rule: str
    key: str
    attempts: int
    error: str
    next_try: str | None = None  # failed: when a run tries it again (None: it will be parked)
    # pending: "in flight" (its writer holds its lease, or lost it too recently to be
    # settled), "watched" or "listed" (the next run reads its order again and settles it),
    # or "needs a person" (no run reads its order unless it changes: `apply --order` does)
    settles: str | None = None


@dataclass(frozen=True)
class Partition:
    partition: str
    cursor: str | None = None
    cursor_saved_at: str | None = None
    last_run: dict[str, Any] | None = None
    watched: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class FlowStatus:
    flow: str
    max_attempts: int
    partitions: list[Partition]
    failed: list[Action]
    parked: list[Action]
    pending: list[Action]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(stamp: str | None) -> str | None:
    """A stored timestamp to the second, as people read them."""
    return _stamp(parse_iso(stamp)) if stamp else None


def _action(entry: LedgerEntry, next_try: str | None = None) -> Action:
    try:
        described = json.loads(entry.summary)
    except ValueError:
        described = {}
    rule = described.get("rule") if isinstance(described, dict) else None
    return Action(entry.order_id, entry.action, str(rule or "?"), entry.key, entry.attempts,
                  entry.error or "", next_try)


def flow_status(store: StateStore, flow: str, options: Mapping[str, Any],
                now: datetime) -> FlowStatus:
    """One flow's state, read from `store` as of `now`."""
    policy = RetryAcrossRuns.from_options(options)
    keys: dict[str, Partition] = {}

    def partition(key: str) -> str:
        return key.partition("@")[2]

    for key, value, saved in store.cursors(flow):
        keys[key] = Partition(partition(key), value, _short(saved))
    for run in store.runs(flow):
        key = f"{flow}@{run.partition}" if run.partition else flow
        found = keys.get(key, Partition(run.partition))
        keys[key] = Partition(found.partition, found.cursor, found.cursor_saved_at, {
            "started_at": _short(run.started_at), "duration_seconds": run.duration_seconds,
            "outcome": run.outcome, "counts": run.counts})
    watching: set[str] = set()
    for watched in store.watch_list(flow, _stamp(now)):
        watching.add(watched.order_id)
        found = keys.setdefault(watched.flow_key, Partition(partition(watched.flow_key)))
        found.watched.append({"order": watched.order_id, "until": _short(watched.until) or "",
                              "reason": str(watched.payload.get("reason") or "")})
    failed = []
    for entry in store.entries(flow, "failed"):
        due = None
        if entry.attempts < policy.max_attempts:
            due = _stamp(max(now, parse_iso(entry.updated_at)
                             + timedelta(seconds=policy.wait(entry.attempts))))
        failed.append(_action(entry, due))
    return FlowStatus(
        flow, policy.max_attempts, [keys[key] for key in sorted(keys)], failed,
        [_action(entry) for entry in store.entries(flow, "parked")],
        [_pending(store, entry, watching, keys) for entry in store.entries(flow, "pending")])


def _pending(store: StateStore, entry: LedgerEntry, watched: set[str],
             partitions: Mapping[str, Partition]) -> Action:
    """A pending entry, with who settles it: the pending entry of a run that ended is
    settled by reading its order, which a run does for a watched order, or one it lists (its
    partition's cursor not saved since the entry was written, or the order changed)."""
    found = _action(entry)
    part = partitions.get(f"{entry.flow}@{entry.partition}" if entry.partition else entry.flow)
    saved = part.cursor_saved_at if part is not None else None
    if store.pending_writer(entry) == "live":
        settles = "in flight"
    elif entry.order_id in watched:
        settles = "watched"
    elif saved is None or saved <= (_short(entry.updated_at) or ""):
        settles = "listed"
    else:
        settles = "needs a person"
    return Action(**{**asdict(found), "settles": settles})


def run(root: Path, flow: str | None, fmt: str, out: TextIO,
        environ: Mapping[str, str] | None = None, now: datetime | None = None,
        sandbox: bool = False) -> int:
    env = runner.environment(environ)
    config = require(load_config(root))
    names = runner.select_flows(config, flow)
    url = runner.state_url(root, config, env, sandbox=sandbox)
    store = runner.open_run_store(url, read_only=True)
    moment = now or datetime.now(timezone.utc)
    if store is None:
        flows: list[FlowStatus] = []
    else:
        with store:
            flows = [flow_status(store, name, config.flow_options.get(name, {}), moment)
                     for name in names]
    if fmt == "json":
        document = {"flows": [asdict(item) for item in flows],
                    "parked": sum(len(item.parked) for item in flows)}
        out.write(json.dumps(document, indent=2) + "\n")
    elif store is None and sandbox:
        out.write("no sandbox run yet: the sandbox's state store does not exist "
                  f"({_where(url)}); `connector apply --sandbox` writes it\n")
    elif store is None:
        out.write("nothing has run yet: the state store does not exist "
                  f"({_where(url)})\n")
    else:
        if sandbox:
            out.write(f"the last sandbox run (apply --sandbox), from {_where(url)}\n")
        _text(config, flows, out)
    return 1 if any(item.parked for item in flows) else 0


SETTLES = {"in flight": "in flight in a running process, settled by reading once it cannot land",
           "watched": "its order is watched: the next run reads it and settles it",
           "listed": "left by a run that ended: the next run lists its order and settles it",
           "needs a person": "left by a run that ended; no run reads its order unless it "
                             "changes"}


def _where(url: str) -> str:
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else url.split("@")[-1]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _text(config: Config, flows: list[FlowStatus], out: TextIO) -> None:
    def write(line: str) -> None:  # ids, reasons and errors are order data: printed as data
        out.write(printable(line[:-1]) + "\n")

    for item in flows:
        write(f"{item.flow} ({config.flows[item.flow].source} → "
                  f"{config.flows[item.flow].target})\n")
        if not item.partitions:
            write("  not run yet\n")
        for part in item.partitions:
            indent = "  "
            if part.partition:
                write(f"  partition {part.partition}\n")
                indent = "    "
            if part.cursor is not None:
                write(f"{indent}cursor: {part.cursor} (saved {part.cursor_saved_at})\n")
            if part.last_run is not None:
                run = part.last_run
                counts = ", ".join(f"{value} {name}" for name, value in run["counts"].items()
                                   if value and name != "orders")
                write(f"{indent}last run: {run['started_at']}, {run['duration_seconds']} s, "
                          f"{run['outcome']}: {_plural(run['counts'].get('orders', 0), 'order')}"
                          f"{': ' + counts if counts else ''}\n")
            if part.watched:
                write(f"{indent}watching {_plural(len(part.watched), 'order')}:\n")
                for watched in part.watched:
                    write(f"{indent}  {watched['order']}: until {watched['until']}"
                              f"{' (' + watched['reason'] + ')' if watched['reason'] else ''}\n")
        for title, actions in (("failed", item.failed), ("parked", item.parked),
                               ("pending, outcome unknown", item.pending)):
            if not actions:
                continue
            write(f"  {title}: {_plural(len(actions), 'action')}\n")
            for action in actions:
                when = ""
                if title == "failed":
                    when = (f" ({action.attempts} of {item.max_attempts} attempts, next try "
                            f"after {action.next_try})" if action.next_try else
                            f" ({action.attempts} attempts: parked by the next run)")
                if action.settles is not None:
                    when = f" ({SETTLES[action.settles]})"
                write(f"    {action.order}: {action.action} [{action.rule}]{when}: "
                          f"{action.error}\n")
            if title == "parked":
                ids = " ".join(sorted({action.order for action in actions}))
                write(f"    once the cause is fixed: connector retry {ids}\n")
            alone = sorted({a.order for a in actions if a.settles == "needs a person"})
            if alone:
                write(f"    no run reads these orders unless they change: check the target, "
                      f"then `connector apply --flow {item.flow} "
                      f"{' '.join('--order ' + order for order in alone)}` settles them by reading\n")
        if not (item.failed or item.parked or item.pending):
            write("  no action failed, parked or pending\n")
