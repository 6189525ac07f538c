"""The text reports of runs: one form of a flow's summary for `apply` and `worker`, and the
plan listing for `plan` (text and JSON). Written once so the two commands cannot drift."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from connector.engine import Summary


def describe(name: str, s: Summary) -> str:
    """A flow's (partition's) summary: the counts line, then what needs attention and what
    failed, one line each."""
    span = f" ({s.window.after} → {s.window.before})" if s.window else ""
    lines = [f"{name}: {s.orders} order(s){span}: {s.done} action(s) done, "
             f"{s.already} already done, {s.skipped} skipped, {s.failed} failed"
             + (f", {s.unknown} unknown outcome(s)" if s.unknown else "")
             + (f", {s.watched} order(s) watched" if s.watched else "")
             + (f", {s.notified} notified" if s.notified else "")]
    lines += [f"  attention: {item}" for item in s.attention]
    lines += [f"  failed: {item}" for item in s.errors]
    return "\n".join(lines)


def print_summary(summaries: Sequence[Summary], out: TextIO) -> None:
    for s in summaries:
        print(describe(s.flow, s), file=out)


def plan_rows(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    return [{
        "flow": s.flow, "order": order_id, "rule": item.rule.id, "action": item.name,
        "args": item.args, "runs": item.runnable,
        "skipped_because": list(item.reasons), "key": item.key,
    } for s in summaries for order_id, item in s.planned]


def print_plan(summaries: Sequence[Summary], fmt: str, out: TextIO,
               redact: Callable[[str], str]) -> None:
    rows = plan_rows(summaries)
    if fmt == "json":
        print(redact(json.dumps(rows, indent=2, default=str)), file=out)
        return
    for s in summaries:
        print(f"{s.flow}: {s.orders} order(s)", file=out)
    for row in rows:
        reasons = row["skipped_because"]
        state = "would run" if row["runs"] else "skip: " + "; ".join(str(r) for r in reasons)
        print(redact(f"  {row['flow']} {row['order']}: {row['action']} "
                     f"{json.dumps(row['args'], default=str)} [{row['rule']}] {state}"), file=out)
    if not rows:
        print("nothing to do", file=out)
