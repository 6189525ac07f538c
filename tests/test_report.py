"""The closing report lists what it counts: one line per reason, orders one cause hit share
a line with their count, the first few lines of each kind unless --verbose, and the failure
count is the number of orders on `failed:` lines."""

from __future__ import annotations

import io
import re

import pytest

from connector import report
from connector.summary import Summary

REFUSED = "vtex: could not connect to https://sandbox.vtexcommercestable.com.br (connection refused)"


def _failed_orders(text: str) -> int:
    total = 0
    for line in text.splitlines():
        if line.startswith("  failed: "):
            grouped = re.match(r"  failed: (\d+) orders \(", line)
            total += int(grouped.group(1)) if grouped else 1
    return total


def test_one_cause_for_many_orders_is_one_line_with_the_count() -> None:
    s = Summary("amazon-to-vtex", orders=12)
    for n in range(12):
        s.tally("failed", f"111-{n:02d}", REFUSED)
    text = report.describe(s.flow, s)
    assert s.failed == 12 and _failed_orders(text) == 12
    assert ("  failed: 12 orders (111-00, 111-01, 111-02, 111-03, 111-04 and 7 more): "
            + REFUSED) in text.splitlines()
    assert "111-11" in report.describe(s.flow, s, verbose=True)


@pytest.mark.parametrize(("kind", "count_field"), [
    ("failed", "failed"), ("unknown", "unknown"), ("skipped", "skipped"), ("watched", "watched"),
])
def test_each_kind_lists_its_orders_first_few_then_a_count(kind: str, count_field: str) -> None:
    s = Summary("f")
    for n in range(8):
        s.tally(kind, f"o{n}", f"reason {n}")  # type: ignore[arg-type]
    short, full = report.describe("f", s), report.describe("f", s, verbose=True)
    assert getattr(s, count_field) == 8
    assert sum(line.startswith(f"  {kind}: ") for line in short.splitlines()) == report.FIRST
    assert f"  … 3 more {kind} (--verbose lists them all)" in short.splitlines()
    assert sum(line.startswith(f"  {kind}: ") for line in full.splitlines()) == 8
    assert "more" not in full


def test_failed_count_matches_the_failed_lines_with_order_and_action_failures() -> None:
    s = Summary("f")
    s.tally("failed", "A", "lookup failed: 500")            # the whole order
    s.tally("failed", "B", "vtex answered 409")             # an action (what is empty here)
    s.tally("unknown", "C", "timed out")
    text = report.describe("f", s)
    assert "0 skipped, 2 failed, 1 unknown outcome(s)" in text
    assert _failed_orders(text) == s.failed == 2
    assert len(s.errors) == 3  # failures and unknown outcomes: the exit code's test


def test_a_flow_that_did_not_run_is_said_apart_from_failed_orders() -> None:
    s = Summary("f")
    s.note("errors", "flow f is already running in another process (pid 7)")
    text = report.describe("f", s)
    assert "  not run: flow f is already running in another process (pid 7)" in text
    assert _failed_orders(text) == 0


def test_plan_says_what_failed_on_stderr_not_a_bare_nothing_to_do() -> None:
    s = Summary("amazon-to-vtex", orders=2)
    s.tally("failed", "111-1", REFUSED)
    out, err = io.StringIO(), io.StringIO()
    report.print_plan([s], "text", out, lambda text: text, err=err)
    assert out.getvalue().splitlines()[-1] == "nothing to do for the orders that could be read"
    assert err.getvalue().splitlines() == [
        "amazon-to-vtex: not planned, 1 problem(s):", f"  failed: 111-1: {REFUSED}"]
    out, err = io.StringIO(), io.StringIO()
    report.print_plan([Summary("f")], "json", out, lambda text: text, err=err)
    assert out.getvalue().strip() == "[]" and err.getvalue() == ""


def test_order_data_in_a_summary_is_printed_as_data() -> None:
    s = Summary("amazon-to-vtex", orders=1)
    s.tally("failed", "111-\x1b[2J\r", "refused: \ud800\nforged: line")
    text = report.describe(s.flow, s)
    assert "\x1b" not in text and "\r" not in text and "\\x1b[2J\\r" in text
    assert len(text.splitlines()) == 2 and "\\nforged" in text
    text.encode("utf-8")
