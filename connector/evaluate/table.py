"""A flow's rule table compiled into a direct look-up over the values its rules test.

Most rule tests compare a field with values (`status: CANCELLED`, `actor: {in: [...]}`,
`target: {exists: false}`): over those, an order falls into one of finitely many cases, and
the rules each case can match are known in advance. The table keeps, per tested path, a map
from each value the rules mention (plus `None`, plus "any other value") to the bit set of rules
whose tests on that path it passes; an order's candidates are the AND of its paths' bit sets,
and the tuple of its values keys a cache of the answer, so a repeated case costs one dict
look-up. Only the tests that are not plain comparisons with values (`gt`, `lt`, `expr`,
`any`, `not`...) remain, run as predicates on the candidates in file order, so `first` keeps
its order with such rules interleaved.

Semantics are those of `conditions.compile_condition` (a missing value is `None`, an
unhashable one equals no listed value). One difference, only in what is *not* run: a rule's
`expr` is not run for an order that the rule's value tests already rule out, whatever their
order in the rule (an `expr` that would have failed on such an order no longer fails it).
A case whose open candidates each leave one comparison of the same number with a threshold
(`totals.amount: {gt: 100}`) is answered by where that number falls among the thresholds
(`evaluate.thresholds`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import functools
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from connector import conditions
from connector.evaluate.thresholds import Regions, decider, threshold
from connector.model import Condition

R = TypeVar("R")
Getter = Callable[[Mapping[str, Any]], Any]

#: Value tests the table answers by look-up; the rest stay predicates.
VALUE_TESTS = ("eq", "ne", "in", "not_in", "exists")
#: Cases remembered per table; past it, new cases are computed (still correct) but not kept.
MAX_CASES = 65_536


class _Other:
    """Any value of a path that no rule mentions (and not None): one case for all of them."""

    def __repr__(self) -> str:
        return "other"


OTHER: Any = _Other()


def _flatten(cond: Condition) -> list[Condition]:
    if cond.op == "all":
        return [leaf for child in cond.children for leaf in _flatten(child)]
    if cond.op == "true":
        return []
    return [cond]


def _is_value_test(leaf: Condition) -> bool:
    if leaf.op not in VALUE_TESTS or not leaf.path:
        return False
    if leaf.op in ("in", "not_in"):
        return all(conditions.hashable(v) for v in leaf.value)
    return leaf.op == "exists" or conditions.hashable(leaf.value)


def split(cond: Condition) -> tuple[list[Condition], list[Condition]]:
    """(value tests the table answers, remaining tests in rule order) of a rule's `when`."""
    leaves = _flatten(cond)
    return [c for c in leaves if _is_value_test(c)], [c for c in leaves if not _is_value_test(c)]


def passes(leaf: Condition, value: Any) -> bool:
    """A value test on one value (`OTHER` standing for any value no rule mentions)."""
    op = leaf.op
    if op == "exists":
        return (value is not None) == bool(leaf.value)
    if value is OTHER:
        return op in ("ne", "not_in")
    if op == "eq":
        return bool(value == leaf.value)
    if op == "ne":
        return bool(value != leaf.value)
    inside = value in frozenset(leaf.value)
    return inside if op == "in" else not inside


def _present(get: Getter) -> Getter:
    return lambda ctx: get(ctx) is not None


@dataclass(frozen=True)
class Column:
    """One tested path: the rules each of its values lets through, as bit sets."""

    path: str
    get: Getter  # the value the key holds (presence only, when the rules only test `exists`)
    masks: dict[Any, int]  # value -> rules passing their tests on this path (None included)
    other: int  # rules passing for a value no rule mentions
    presence: bool = False

    def mask(self, value: Any) -> int:
        try:
            return self.masks.get(value, self.other)
        except TypeError:  # unhashable (a list where a status belongs): equals no listed value
            return self.other


@dataclass(frozen=True)
class Pending:
    """A case the columns leave open: candidates in file order, each with what is left to
    test, and (under `first`) the answer if it is the one that matches; `decide` gives the
    case's outcome for a context (`evaluate.thresholds.decider`), and `regions` the same
    answer for a number one level down, which the generated evaluator reads inline."""

    steps: tuple[tuple[int, conditions.Predicate | None, Any], ...]
    decide: Callable[[Mapping[str, Any]], Any] = field(compare=False)
    regions: Regions | None = field(default=None, compare=False)


def _key_parts(columns: Sequence[Column], names: dict[str, Any],
               subscript: bool = False) -> list[str]:
    """One expression per column for the generated key tuple (`key_function`, `evaluator`).

    `subscript`: read the context's own keys as `ctx[name]` (a KeyError when one is absent,
    for the caller to catch), which costs less than `ctx.get(name)`; a context built from a
    canonical order has every canonical field. Inside a field (`target.status`) absent keys
    are common enough (`outputs`, `attributes`) to keep `.get`.

    The generated source holds only generated names (`p0`, `g1`...); paths and getters are
    passed in its namespace, never written into the source."""
    parts = []
    for i, column in enumerate(columns):
        pieces = column.path.split(".")
        names[f"g{i}"] = column.get
        read = f"ctx[p{i}]" if subscript else f"ctx.get(p{i})"
        if column.presence:
            parts.append(f"g{i}(ctx)")
        elif len(pieces) == 1:
            names[f"p{i}"] = pieces[0]
            parts.append(read)
        elif len(pieces) == 2 and not pieces[1].isdigit():
            names[f"p{i}"], names[f"q{i}"] = pieces
            parts.append(f"(t{i}.get(q{i}) if type(t{i} := {read}) is dict "
                         f"else None if t{i} is None else g{i}(ctx))")
        else:
            parts.append(f"g{i}(ctx)")
    return parts


def key_function(columns: Sequence[Column]) -> Getter:
    """`ctx -> tuple of the columns' values`, as one generated expression (one Python frame
    instead of one per column)."""
    names: dict[str, Any] = {"dict": dict}
    source = "lambda ctx: (" + "".join(part + ", " for part in _key_parts(columns, names)) + ")"
    return eval(source, names)  # noqa: S307 - generated names only


@dataclass(frozen=True)
class Table(Generic[R]):
    """A compiled rule table: `evaluate(ctx)` gives `outcome(matching rule indices)`."""

    columns: tuple[Column, ...]
    residuals: tuple[conditions.Predicate | None, ...]  # per rule, what the columns do not decide
    first: bool
    outcome: Callable[[tuple[int, ...]], R]
    key: Getter
    #: per rule, (path, op, number) when what the columns leave is one numeric comparison
    thresholds: tuple[tuple[str, str, Any] | None, ...] = ()
    cases: dict[Any, R | Pending] = field(default_factory=dict)
    outcomes: dict[tuple[int, ...], R] = field(default_factory=dict)

    def candidates(self, key: Sequence[Any]) -> list[int]:
        """Indices of the rules whose value tests pass for these values, in file order."""
        mask = (1 << len(self.residuals)) - 1
        for column, value in zip(self.columns, key):
            mask &= column.mask(value)
            if not mask:
                return []
        found = []
        while mask:
            low = mask & -mask
            found.append(low.bit_length() - 1)
            mask ^= low
        return found

    def result(self, indices: tuple[int, ...]) -> R:
        """The outcome of these matching rules (made once per distinct set)."""
        found = self.outcomes.get(indices)
        if found is None:
            found = self.outcome(indices)
            if len(self.outcomes) < MAX_CASES:
                self.outcomes[indices] = found
        return found

    def case(self, key: tuple[Any, ...]) -> R | Pending:
        """A case's answer when the columns decide it, else what remains to run."""
        steps: list[tuple[int, conditions.Predicate | None, Any]] = []
        for index in self.candidates(key):
            residual = self.residuals[index]
            steps.append((index, residual, self.result((index,)) if self.first else None))
            if residual is None and self.first:
                break
        if all(residual is None for _, residual, _ in steps):
            return self.result(tuple(index for index, _, _ in steps))
        if not self.first:
            result, open_steps = self.result, tuple(steps)

            def every(ctx: Mapping[str, Any]) -> R:
                return result(tuple(index for index, residual, _ in open_steps
                                    if residual is None or residual(ctx)))
            return Pending(open_steps, every)
        thresholds = self.thresholds or (None,) * len(self.residuals)  # a Table made by hand
        decide, regions = decider(steps, thresholds, lambda: self.result(()))
        return Pending(tuple(steps), decide, regions)

    def evaluate(self, ctx: Mapping[str, Any]) -> R:
        """The outcome for one order's context (the hot path: see `evaluator`)."""
        return self.run(ctx)

    @functools.cached_property
    def run(self) -> Callable[[Mapping[str, Any]], R]:
        return evaluator(self)


def _general(table: Table[R]) -> Callable[[Mapping[str, Any]], R]:
    """`table.evaluate` for any context: unhashable values, cases not seen yet (made and
    remembered here), and cases left to predicates."""
    key_of, cases, make = table.key, table.cases, table.case

    def evaluate(ctx: Mapping[str, Any]) -> R:
        key = key_of(ctx)
        try:
            case = cases.get(key)
        except TypeError:  # an unhashable value: it equals no listed value, like OTHER
            key = tuple([value if conditions.hashable(value) else OTHER for value in key])
            case = cases.get(key)
        if case is None:
            case = make(key)
            if len(cases) < MAX_CASES:
                cases[key] = case
        if type(case) is not Pending:
            return case  # type: ignore[return-value]
        return case.decide(ctx)

    return evaluate


#: The hot path, generated per table with its columns' key expressions inlined: a case seen
#: before costs the context reads, one dict subscript and a type check, in one Python frame
#: (the key function, `cases.get` and the pending loop as separate calls cost about as
#: much again as the work). A case left to one number's thresholds (`Regions`) is answered
#: here too, by `bisect`, without calling the case's `decide`. Anything else goes to
#: `_general`: a context that is not a plain dict (`ctx[name]` on a defaultdict would add the
#: key), one without a tested field or a case not seen yet (KeyError), an unhashable value
#: (TypeError); and any other pending case, or a value that is not a number, to `decide`.
_EVALUATOR = """
def evaluate(ctx):
    if type(ctx) is not dict:
        return general(ctx)
    try:
        case = cases[({key})]
    except (KeyError, TypeError):
        return general(ctx)
    if type(case) is not Pending:
        return case
    regions = case.regions
    if regions is not None:
        inner = ctx.get(regions.head)
        if type(inner) is dict:
            value = inner.get(regions.tail)
            kind = type(value)
            if (kind is int or kind is float) and value == value:
                bounds = regions.bounds
                at = bisect_left(bounds, value)
                if at < len(bounds) and bounds[at] == value:
                    return regions.answers[2 * at + 1]
                return regions.answers[2 * at]
    return case.decide(ctx)
"""


def evaluator(table: Table[R]) -> Callable[[Mapping[str, Any]], R]:
    """`table.evaluate` as one generated function over local names (see `_EVALUATOR`); it
    gives what `_general` gives for every context."""
    names: dict[str, Any] = {"dict": dict, "Pending": Pending, "cases": table.cases,
                             "general": _general(table), "bisect_left": bisect_left, "len": len,
                             "int": int, "float": float, "type": type}
    key = "".join(part + ", " for part in _key_parts(table.columns, names, subscript=True))
    source = _EVALUATOR.format(key=key)
    exec(source, names)  # noqa: S102 - generated names only
    return names["evaluate"]


def compile_table(
    conds: Sequence[Condition], first: bool, outcome: Callable[[tuple[int, ...]], R]
) -> Table[R]:
    """The table of these rule conditions (`first`: only the first match counts)."""
    tests: list[list[Condition]] = []
    residuals: list[conditions.Predicate | None] = []
    thresholds: list[tuple[str, str, Any] | None] = []
    for cond in conds:
        values, rest = split(cond)
        tests.append(values)
        residuals.append(conditions.all_of([conditions.compile_condition(c) for c in rest])
                         if rest else None)
        thresholds.append(threshold(rest))
    paths = sorted({leaf.path for leaves in tests for leaf in leaves}, key=lambda p: ("." in p, p))
    columns = []
    for path in paths:
        mentioned: dict[Any, Any] = {None: None}
        for leaves in tests:
            for leaf in leaves:
                if leaf.path == path and leaf.op != "exists":
                    for value in (leaf.value if leaf.op in ("in", "not_in") else (leaf.value,)):
                        mentioned.setdefault(value, value)
        masks = {value: 0 for value in mentioned}
        other = 0
        for index, leaves in enumerate(tests):
            own = [leaf for leaf in leaves if leaf.path == path]
            bit = 1 << index
            for value in mentioned:
                if all(passes(leaf, value) for leaf in own):
                    masks[value] |= bit
            if all(passes(leaf, OTHER) for leaf in own):
                other |= bit
        get = conditions.getter(path)
        if len(mentioned) == 1:  # only `exists` tests: the key holds presence, not the value
            columns.append(Column(path, _present(get), {False: masks[None], True: other}, other, True))
        else:
            columns.append(Column(path, get, masks, other))
    return Table(tuple(columns), tuple(residuals), first, outcome, key_function(columns),
                 tuple(thresholds))
