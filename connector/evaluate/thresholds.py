"""Pending cases of a rule table (`evaluate.table`) decided by one number.

Rules often leave, beyond the values the table looks up, one comparison of a number with a
constant (`totals.amount: {gt: 100}`). When every open candidate of a case leaves such a
comparison on the same path, the first hit depends only on where the number falls among
the thresholds: 2k + 1 regions for k distinct thresholds (each open interval and each
threshold itself), each region's answer computed once, the number placed by `bisect`.
Comparisons between ints and floats are exact in Python, so this gives what running each
candidate's predicate in file order gives; any other value (missing, bool, NaN, text) runs
the predicates.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector import conditions
from connector.model import Condition

#: Comparisons a pending case can decide by where one number falls among its thresholds.
ORDERING = ("lt", "le", "gt", "ge")


def threshold(leaves: Sequence[Condition]) -> tuple[str, str, Any] | None:
    """(path, op, threshold) when what a rule leaves to predicates is one comparison of a
    path with a number (not a bool, not NaN); else None."""
    if len(leaves) != 1:
        return None
    (leaf,) = leaves
    value = leaf.value
    if leaf.op not in ORDERING or not leaf.path:
        return None
    if type(value) not in (int, float) or value != value:
        return None
    return leaf.path, leaf.op, value


@dataclass(frozen=True, slots=True)
class Regions:
    """A threshold case in the form the table's generated evaluator reads inline (no call):
    the number at `ctx[head][tail]`, placed among `bounds`, picks `answers[region]`."""

    head: str
    tail: str
    bounds: list[Any]
    answers: list[Any]


def _holds(op: str, m: int, region: int) -> bool:
    """Whether `v op bounds[m]` holds for every number v in `region` of sorted distinct
    bounds: region 2i lies strictly between bounds[i-1] and bounds[i], region 2i+1 is
    bounds[i] itself."""
    i, exact = divmod(region, 2)
    below = m > i or (m == i and not exact)  # v < bounds[m]
    equal = bool(exact) and m == i
    above = not below and not equal
    return {"lt": below, "le": below or equal, "gt": above, "ge": above or equal}[op]


def decider(steps: Sequence[tuple[int, conditions.Predicate | None, Any]],
            tests: Sequence[tuple[str, str, Any] | None], none: Callable[[], Any]
            ) -> tuple[Callable[[Mapping[str, Any]], Any], Regions | None]:
    """The first-hit answer of a pending case, for a context, and (when the number sits one
    level down, `totals.amount`) the same answer as `Regions` for the evaluator to inline.

    When every candidate left open is decided by one comparison of the same path with a
    number (`totals.amount: {gt: 100}`, the usual case), the answer depends only on where
    that number falls among the thresholds: it is read once, placed by `bisect`, and the
    answer of its region (computed here, once) returned. Any other value (missing, a bool,
    NaN, a string...) and any other case run the candidates' predicates in file order."""
    def run(ctx: Mapping[str, Any]) -> Any:
        for _, residual, answer in steps:
            if residual is None or residual(ctx):
                return answer
        return none()

    open_tests = [tests[index] for index, residual, _ in steps if residual is not None]
    if not open_tests or None in open_tests or len({t[0] for t in open_tests if t}) != 1:
        return run, None
    path = open_tests[0][0]  # type: ignore[index]
    bounds = sorted({t[2] for t in open_tests if t})
    position = {bound: m for m, bound in enumerate(bounds)}
    answers = []
    for region in range(2 * len(bounds) + 1):
        for index, residual, answer in steps:
            test = tests[index]
            if residual is None or (test and _holds(test[1], position[test[2]], region)):
                answers.append(answer)
                break
        else:
            answers.append(none())
    get, count = conditions.getter(path), len(bounds)
    pieces = path.split(".")
    two = len(pieces) == 2 and not pieces[1].isdigit()
    head, tail = (pieces[0], pieces[1]) if two else (None, None)

    def decide(ctx: Mapping[str, Any]) -> Any:
        inner = ctx.get(head) if head is not None else None  # `get` inlined for `totals.amount`
        value = inner.get(tail) if type(inner) is dict else get(ctx)
        kind = type(value)
        if (kind is int or kind is float) and value == value:
            at = bisect_left(bounds, value)
            return answers[2 * at + 1 if at < count and bounds[at] == value else 2 * at]
        return run(ctx)

    return decide, Regions(pieces[0], pieces[1], bounds, answers) if two else None
