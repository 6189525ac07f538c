"""The closed condition language: parse YAML into `Condition` trees, compile them to callables,
and explain a verdict.

The language is deliberately small (equality, in, not_in, exists, comparisons, all/any/not,
and a Jinja `expr` escape hatch) so that `analysis` can reason about it over the systems'
declared domains, and compiled once so evaluating an order costs microseconds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connector import templates
from connector.errors import TemplateError
from connector.model import Condition, Where

COMBINATORS = ("all", "any", "not")
TESTS = ("eq", "ne", "in", "not_in", "exists", "lt", "le", "gt", "ge")


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()

Predicate = Callable[[Mapping[str, Any]], bool]
Position = Callable[[tuple[str | int, ...], bool], tuple[int, int]]


def parse(data: Any, file: str, path: tuple[str | int, ...], position: Position) -> Condition:
    """Turn schema-valid condition data into a tree (an implicit `all` for several keys)."""
    line, col = position(path, False)
    where = Where(file, line, col)
    if not isinstance(data, Mapping):
        return Condition("true", where=where)
    parts: list[Condition] = []
    for key, value in data.items():
        kpath = path + (key,)
        kline, kcol = position(kpath, True)
        kwhere = Where(file, kline, kcol)
        if key in ("all", "any"):
            children = tuple(
                parse(item, file, kpath + (i,), position) for i, item in enumerate(value)
            )
            parts.append(Condition(key, children=children, where=kwhere))
        elif key == "not":
            parts.append(Condition("not", children=(parse(value, file, kpath, position),), where=kwhere))
        elif key == "expr":
            parts.append(Condition("expr", value=str(value), where=kwhere))
        elif isinstance(value, Mapping):
            tests = [Condition(op, path=key, value=_freeze(v), where=kwhere) for op, v in value.items()]
            parts.extend(tests)
        else:
            parts.append(Condition("eq", path=key, value=value, where=kwhere))
    if len(parts) == 1:
        return parts[0]
    return Condition("all", children=tuple(parts), where=where)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or MISSING. Lists are indexed by number."""
    return lookup_parts(context, path.split("."))


def lookup_parts(context: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """`lookup` of a path already split (the exact `dict` check first: the ABC check alone
    cost more than the rest of a look-up)."""
    current: Any = context
    for part in parts:
        if type(current) is dict or isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, (list, tuple)) and part.isdigit():
            index = int(part)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def _value(context: Mapping[str, Any], path: str) -> Any:
    value = lookup(context, path)
    return None if value is MISSING else value


Getter = Callable[[Mapping[str, Any]], Any]


def getter(path: str) -> Getter:
    """`lookup` of one path as tests read it (None for missing), the path split once."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        (name,) = parts
        return lambda ctx: ctx.get(name)
    if len(parts) == 2 and not parts[1].isdigit():
        head, tail = parts

        def two(ctx: Mapping[str, Any]) -> Any:
            inner = ctx.get(head)
            if type(inner) is dict:
                return inner.get(tail)
            return inner.get(tail) if isinstance(inner, Mapping) else None

        return two
    return lambda ctx: _value(ctx, path)


_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
}


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return False
    try:
        return bool(_ORDER[op](left, right))
    except TypeError:
        return False


def all_of(kids: Sequence[Predicate]) -> Predicate:
    """True when every predicate is: one frame for one or two of them (the usual `all`),
    a loop that stops at the first false one beyond."""
    if len(kids) == 1:
        return kids[0]
    if len(kids) == 2:
        first, second = kids
        return lambda ctx: bool(first(ctx) and second(ctx))

    def every(ctx: Mapping[str, Any]) -> bool:
        for kid in kids:
            if not kid(ctx):
                return False
        return True

    return every


def _some(kids: list[Predicate]) -> Predicate:
    def some(ctx: Mapping[str, Any]) -> bool:
        for kid in kids:
            if kid(ctx):
                return True
        return False

    return some


def compile_condition(cond: Condition) -> Predicate:
    """A Python callable for the tree; built once per rule at load time."""
    op, path, value = cond.op, cond.path, cond.value
    if op == "true":
        return lambda ctx: True
    if op == "all":
        return all_of([compile_condition(c) for c in cond.children])
    if op == "any":
        return _some([compile_condition(c) for c in cond.children])
    if op == "not":
        kid = compile_condition(cond.children[0])
        return lambda ctx: not kid(ctx)
    if op == "expr":
        expression = str(value)
        return lambda ctx: bool(templates.evaluate(expression, ctx))
    get = getter(path)
    if op == "eq":
        return lambda ctx: bool(get(ctx) == value)
    if op == "ne":
        return lambda ctx: bool(get(ctx) != value)
    if op in ("in", "not_in"):
        choices = frozenset(value) if all(hashable(v) for v in value) else tuple(value)
        parts = path.split(".")
        if isinstance(choices, frozenset) and len(parts) == 2 and not parts[1].isdigit():
            return _member_two(parts[0], parts[1], get, choices, op == "in")
        inside = _member(get, choices)
        return inside if op == "in" else (lambda ctx: not inside(ctx))
    if op == "exists":
        want = bool(value)
        return lambda ctx: (get(ctx) is not None) == want
    if op in _ORDER:
        compare = _ORDER[op]
        parts = path.split(".")
        if len(parts) == 2 and not parts[1].isdigit():
            head, tail = parts

            def ordered_two(ctx: Mapping[str, Any]) -> bool:
                # `get` inlined (`totals.amount: {gt: 100}`): these are the tests a rule
                # table leaves to run as predicates, once per candidate rule and order
                inner = ctx.get(head)
                left = inner.get(tail) if type(inner) is dict else get(ctx)
                if left is None:
                    return False
                try:
                    return bool(compare(left, value))
                except TypeError:
                    return False

            return ordered_two

        def ordered(ctx: Mapping[str, Any]) -> bool:
            left = get(ctx)
            if left is None:
                return False
            try:
                return bool(compare(left, value))
            except TypeError:
                return False

        return ordered
    raise ValueError(f"unknown condition operator {op!r}")  # schema prevents this


def _member(get: Getter, choices: frozenset[Any] | tuple[Any, ...]) -> Predicate:
    if not isinstance(choices, frozenset):  # a listed value is unhashable: compare one by one
        return lambda ctx: hashable(found := get(ctx)) and found in choices

    def inside(ctx: Mapping[str, Any]) -> bool:
        try:
            return get(ctx) in choices
        except TypeError:  # unhashable: equals no listed value
            return False

    return inside


def _member_two(head: str, tail: str, get: Getter, choices: frozenset[Any],
                want: bool) -> Predicate:
    """`in` (`want`) or `not_in` on a two-part path (`order.status: {not_in: [...]}`, the
    usual precondition) in one frame: `_member` with `getter`'s look-up inlined, and `not_in`
    without a frame of its own; the same answers (an unhashable value is in no list)."""
    def member(ctx: Mapping[str, Any]) -> bool:
        inner = ctx.get(head)
        try:
            return ((inner.get(tail) if type(inner) is dict else get(ctx)) in choices) is want
        except TypeError:  # unhashable: equals no listed value
            return not want

    return member


def hashable(value: Any) -> bool:
    """Whether a value can be looked up in a set (a list or a dict from an order cannot)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def describe(cond: Condition) -> str:
    """A condition in words, for explain output and findings."""
    op = cond.op
    if op == "true":
        return "always"
    if op in ("all", "any"):
        joiner = " and " if op == "all" else " or "
        return "(" + joiner.join(describe(c) for c in cond.children) + ")"
    if op == "not":
        return f"not {describe(cond.children[0])}"
    if op == "expr":
        return f"expr {cond.value!r}"
    if op == "exists":
        return f"{cond.path} {'exists' if cond.value else 'does not exist'}"
    symbols = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    if op in symbols:
        return f"{cond.path} {symbols[op]} {cond.value!r}"
    words = "in" if op == "in" else "not in"
    return f"{cond.path} {words} {list(cond.value)!r}"


def explain(cond: Condition, context: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Evaluate with reasons: the leaf conditions that decided the verdict."""
    op = cond.op
    if op in ("all", "any"):
        results = [explain(c, context) for c in cond.children]
        if op == "all":
            failed = [r for ok, rs in results if not ok for r in rs]
            return (not failed, failed if failed else [r for _, rs in results for r in rs])
        passed = [r for ok, rs in results if ok for r in rs]
        if passed:
            return True, passed
        return False, [r for _, rs in results for r in rs]
    if op == "not":
        ok, reasons = explain(cond.children[0], context)
        return (not ok, [f"not ({'; '.join(reasons)})"])
    try:
        ok = compile_condition(cond)(context)
    except TemplateError as exc:
        return False, [f"{describe(cond)}: error: {exc}"]
    if op in ("true", "expr"):
        return ok, [describe(cond)]
    actual = lookup(context, cond.path)
    return ok, [f"{describe(cond)} (is {shown(actual)})"]


Explainer = Callable[[Mapping[str, Any]], tuple[bool, list[str]]]


def explainer(cond: Condition) -> Explainer:
    """`explain` of this tree compiled once: the same verdicts and reasons, without
    compiling each leaf and wording its test again on every call (planning explains a
    failed precondition for every order it fails on)."""
    op = cond.op
    if op in ("all", "any"):
        kids = [explainer(c) for c in cond.children]
        if op == "all":
            def every(context: Mapping[str, Any]) -> tuple[bool, list[str]]:
                results = [kid(context) for kid in kids]
                failed = [r for ok, rs in results if not ok for r in rs]
                return (not failed, failed if failed else [r for _, rs in results for r in rs])
            return every

        def some(context: Mapping[str, Any]) -> tuple[bool, list[str]]:
            results = [kid(context) for kid in kids]
            passed = [r for ok, rs in results if ok for r in rs]
            if passed:
                return True, passed
            return False, [r for _, rs in results for r in rs]
        return some
    if op == "not":
        kid = explainer(cond.children[0])

        def negated(context: Mapping[str, Any]) -> tuple[bool, list[str]]:
            ok, reasons = kid(context)
            return (not ok, [f"not ({'; '.join(reasons)})"])
        return negated
    test, words, parts = compile_condition(cond), describe(cond), tuple(cond.path.split("."))
    if op in ("true", "expr"):
        def opaque(context: Mapping[str, Any]) -> tuple[bool, list[str]]:
            try:
                ok = test(context)
            except TemplateError as exc:
                return False, [f"{words}: error: {exc}"]
            return ok, [words]
        return opaque
    # A value test's verdict and reason depend on the value at its path only; for values
    # whose equality implies the same repr, they are remembered by (type, value).
    memo: dict[tuple[type, Any], tuple[bool, str]] = {}

    def leaf(context: Mapping[str, Any]) -> tuple[bool, list[str]]:
        value = lookup_parts(context, parts)
        kind = type(value)
        if kind in _EXACT:
            found = memo.get((kind, value))
            if found is None:
                found = (test(context), f"{words} (is {shown(value)})")
                if len(memo) < _MEMO_MAX:
                    memo[(kind, value)] = found
            return found[0], [found[1]]
        return test(context), [f"{words} (is {shown(value)})"]
    return leaf


#: Types whose equal values have one repr (not float: 0.0 == -0.0), for `explainer`'s memo.
_EXACT = frozenset({str, int, bool, type(None), _Missing})
_MEMO_MAX = 1024


#: Longest value shown in a reason; longer ones are cut (a whole raw record helps no one).
SHOWN_MAX = 80


def shown(value: Any) -> str:
    """A value as a reason shows it: a record by its id, anything else short.

    `target exists` reads only whether the counterpart is there, so its id says enough;
    the fields a rule reads have their own conditions, each showing its own value.
    """
    if value is MISSING:
        return "missing"
    if isinstance(value, Mapping) and value.get("id") is not None:
        system = f"{value['system']} " if value.get("system") else ""
        return f"{system}record {value['id']!r}"
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def leaves(cond: Condition) -> list[Condition]:
    """Every test leaf of a tree (for reference checks)."""
    if cond.op in ("all", "any", "not"):
        return [leaf for c in cond.children for leaf in leaves(c)]
    return [cond]
