"""The closed condition language: parse YAML into `Condition` trees, compile them to callables,
and explain a verdict.

The language is deliberately small (equality, in, not_in, exists, comparisons, all/any/not,
and a Jinja `expr` escape hatch) so that `analysis` can reason about it over the systems'
declared domains, and compiled once so evaluating an order costs microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    current: Any = context
    for part in path.split("."):
        if isinstance(current, Mapping):
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


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return False
    try:
        if op == "lt":
            return bool(left < right)
        if op == "le":
            return bool(left <= right)
        if op == "gt":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


def compile_condition(cond: Condition) -> Predicate:
    """A Python callable for the tree; built once per rule at load time."""
    op, path, value = cond.op, cond.path, cond.value
    if op == "true":
        return lambda ctx: True
    if op == "all":
        kids = [compile_condition(c) for c in cond.children]
        return lambda ctx: all(k(ctx) for k in kids)
    if op == "any":
        kids = [compile_condition(c) for c in cond.children]
        return lambda ctx: any(k(ctx) for k in kids)
    if op == "not":
        kid = compile_condition(cond.children[0])
        return lambda ctx: not kid(ctx)
    if op == "eq":
        return lambda ctx: _value(ctx, path) == value
    if op == "ne":
        return lambda ctx: _value(ctx, path) != value
    if op == "in":
        choices = frozenset(value) if all(_hashable(v) for v in value) else tuple(value)
        return lambda ctx: _hashable(_value(ctx, path)) and _value(ctx, path) in choices
    if op == "not_in":
        choices_n = frozenset(value) if all(_hashable(v) for v in value) else tuple(value)
        return lambda ctx: not (_hashable(_value(ctx, path)) and _value(ctx, path) in choices_n)
    if op == "exists":
        want = bool(value)
        return lambda ctx: (_value(ctx, path) is not None) == want
    if op in ("lt", "le", "gt", "ge"):
        return lambda ctx: _compare(op, _value(ctx, path), value)
    if op == "expr":
        expression = str(value)
        return lambda ctx: bool(templates.evaluate(expression, ctx))
    raise ValueError(f"unknown condition operator {op!r}")  # schema prevents this


def _hashable(value: Any) -> bool:
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
