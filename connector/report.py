"""The text reports of runs: one form of a flow's summary for `apply` and `worker`, and the
plan listing for `plan` (text and JSON). Written once so the two commands cannot drift."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from connector.printable import printable
from connector.summary import Kind, Listed, Summary


#: Lines per kind (groups of orders with one reason) shown without --verbose.
FIRST = 5
#: Order ids shown on a line that groups several orders.
IDS = 5
_KINDS: tuple[Kind, ...] = ("failed", "unknown", "skipped", "watched", "waiting")


def describe(name: str, s: Summary, verbose: bool = False) -> str:
    """A flow's (partition's) summary: the counts line, then what needs attention, then the
    orders behind each count other than done (failed, unknown, skipped, watched), one line per
    reason: orders that one cause hit (a system that cannot be reached) share a line with
    their count. The first few lines of each kind unless `verbose`."""
    span = f" ({s.window.after} → {s.window.before})" if s.window else ""
    lines = [f"{name}: {s.orders} order(s){span}: {s.done} action(s) done, "
             f"{s.already} already done, {s.skipped} skipped, {s.failed} failed"
             + (f", {s.unknown} unknown outcome(s)" if s.unknown else "")
             + (f", {s.settled} settled by reading" if s.settled else "")
             + (f", {s.watched} order(s) watched" if s.watched else "")
             + (f", {s.waiting} waiting for a batch's result" if s.waiting else "")
             + (f", {s.notified} notified" if s.notified else "")]
    lines += [f"  attention: {item}" for item in s.attention]
    listed = {str(entry) for entry in s.listed}
    lines += [f"  not run: {text}" for text in s.errors if text not in listed]
    for kind in _KINDS:
        groups = _grouped(s.of(kind))
        shown = groups if verbose else groups[:FIRST]
        lines += [f"  {kind}: {_line(group, verbose)}" for group in shown]
        if len(shown) < len(groups):
            rest = sum(len(group) for group in groups[len(shown):])
            lines.append(f"  … {rest} more {kind} (--verbose lists them all)")
    return "\n".join(printable(line) for line in lines)  # order ids and reasons are order data


def _grouped(entries: Sequence[Listed]) -> list[list[Listed]]:
    """Entries with the same action and reason together, in order of first appearance."""
    groups: dict[tuple[str, str], list[Listed]] = {}
    for entry in entries:
        groups.setdefault((entry.what, entry.reason), []).append(entry)
    return [sorted(group, key=lambda e: e.order) for group in groups.values()]


def _line(group: Sequence[Listed], verbose: bool) -> str:
    if len(group) == 1:
        return str(group[0])
    ids = [entry.order for entry in group]
    shown = ids if verbose else ids[:IDS]
    more = f" and {len(ids) - len(shown)} more" if len(shown) < len(ids) else ""
    what = f"{group[0].what}: " if group[0].what else ""
    return f"{len(ids)} orders ({', '.join(shown)}{more}): {what}{group[0].reason}"


def print_summary(summaries: Sequence[Summary], out: TextIO, verbose: bool = False) -> None:
    for s in summaries:
        print(describe(s.flow, s, verbose), file=out)


def plan_rows(summaries: Sequence[Summary]) -> list[dict[str, Any]]:
    return [{
        "flow": s.flow, "order": order_id, "rule": item.rule.id, "action": item.name,
        "args": item.args, "runs": item.runnable,
        "skipped_because": list(item.reasons), "key": item.key,
    } for s in summaries for order_id, item in s.planned]


def print_plan(summaries: Sequence[Summary], fmt: str, out: TextIO,
               redact: Callable[[str], str], verbose: bool = False,
               err: TextIO | None = None) -> None:
    """The actions `apply` would run (on `out`); then, on `err` (stderr), as in `apply`'s
    summary, the orders that could not be planned (a read or a look-up failed), so that
    "nothing to do" is never said of a plan that could not see everything."""
    err = err or sys.stderr
    rows = plan_rows(summaries)
    failing = [s for s in summaries if s.errors]
    for s in failing:
        problems = describe(s.flow, s, verbose).splitlines()[1:]
        print(redact(f"{s.flow}: not planned, {len(s.errors)} problem(s):"), file=err)
        for line in problems:
            if not line.startswith(("  skipped:", "  watched:")):
                print(redact(line), file=err)
    if fmt == "json":
        print(redact(json.dumps(rows, indent=2, default=str)), file=out)
        return
    for s in summaries:
        print(f"{s.flow}: {s.orders} order(s)", file=out)
    for row in rows:
        reasons = row["skipped_because"]
        state = "would run" if row["runs"] else "skip: " + "; ".join(str(r) for r in reasons)
        print(printable(redact(f"  {row['flow']} {row['order']}: {row['action']} "
                               f"{json.dumps(row['args'], default=str)} [{row['rule']}] {state}")),
              file=out)
    if not rows:
        print("nothing to do" + (" for the orders that could be read" if failing else ""),
              file=out)
