"""The compiled rule table agrees with interpreting every rule in order, on random tables and
random orders: values from the domains, out-of-domain values, missing and unhashable ones."""

from __future__ import annotations

import operator
import random
from collections.abc import Mapping
from typing import Any

import pytest

from connector import conditions, templates
from connector.evaluate.table import OTHER, Pending, compile_table, evaluator, split
from connector.model import Condition

STATUS = ["PENDING", "UNSHIPPED", "SHIPPED", "CANCELLED"]
ACTOR = ["seller", "amazon", "customer"]
TARGET = ["handling", "invoiced", "canceled"]
#: Values only orders have: outside every domain, missing, hash-equal across types, unhashable.
STRANGE: list[Any] = ["UNKNOWN", "", None, 0, 1, True, 1.0, ["SHIPPED"], {"a": 1}, ("SHIPPED",)]
MISSING = object()  # an order without the field at all
PATHS: dict[str, list[Any]] = {"status": STATUS, "actor": ACTOR, "fulfilment": ["merchant", "marketplace"],
         "target.status": TARGET, "flag": [True, False, 1, 0]}
ORDER = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def interpret(cond: Condition, ctx: Mapping[str, Any]) -> bool:
    """The condition language read literally, leaf by leaf (docs/format.md)."""
    op = cond.op
    if op == "true":
        return True
    if op == "all":
        return all(interpret(c, ctx) for c in cond.children)
    if op == "any":
        return any(interpret(c, ctx) for c in cond.children)
    if op == "not":
        return not interpret(cond.children[0], ctx)
    if op == "expr":
        return bool(templates.evaluate(str(cond.value), ctx))
    found = conditions.lookup(ctx, cond.path)
    value = None if found is conditions.MISSING else found
    if op == "eq":
        return bool(value == cond.value)
    if op == "ne":
        return bool(value != cond.value)
    if op in ("in", "not_in"):
        try:
            hash(value)
            inside = value in cond.value
        except TypeError:
            inside = False
        return inside if op == "in" else not inside
    if op == "exists":
        return (value is not None) == bool(cond.value)
    if value is None:
        return False
    try:
        return bool(ORDER[op](value, cond.value))
    except TypeError:
        return False


def leaf(rng: random.Random) -> Condition:
    roll = rng.random()
    if roll < 0.1:
        return Condition("gt" if rng.random() < 0.5 else "le", path="totals.amount", value=rng.choice([10, 50, 90]))
    if roll < 0.15:
        return Condition("expr", value=rng.choice(["totals.amount == 45", "totals.amount is none", "totals"]))
    if roll < 0.25:
        return Condition("exists", path=rng.choice(["target", "actor", "target.status"]), value=rng.random() < 0.5)
    path = rng.choice(list(PATHS))
    domain = PATHS[path] + ([rng.choice(STRANGE)] if rng.random() < 0.1 else [])
    op = rng.choice(["eq", "eq", "in", "in", "ne", "not_in"])
    if op in ("in", "not_in"):
        values = tuple(rng.sample(domain, min(len(domain), rng.randint(1, 3))))
        if rng.random() < 0.05:
            values += (["SHIPPED"],)  # an unhashable listed value: the test stays a predicate
        return Condition(op, path=path, value=values)
    value = rng.choice(domain)
    return Condition(op, path=path, value=value if not isinstance(value, (list, dict)) else "x")


def tree(rng: random.Random, depth: int = 0) -> Condition:
    roll = rng.random()
    if depth < 2 and roll < 0.12:
        return Condition(rng.choice(["any", "not"]) if roll < 0.08 else "all",
                         children=tuple(tree(rng, depth + 1) for _ in range(1 if roll < 0.04 else 2)))
    return leaf(rng)


def rule(rng: random.Random) -> Condition:
    parts = [tree(rng) for _ in range(rng.randint(0, 4))]
    if not parts:
        return Condition("true")
    return parts[0] if len(parts) == 1 else Condition("all", children=tuple(parts))


def order(rng: random.Random) -> dict[str, Any]:
    def pick(domain: list[Any]) -> Any:
        return rng.choice(domain) if rng.random() < 0.8 else rng.choice([*STRANGE, MISSING])

    ctx: dict[str, Any] = {}
    for name in ("status", "actor", "fulfilment", "flag"):
        value = pick(PATHS[name])
        if value is not MISSING:
            ctx[name] = value
    roll = rng.random()
    if roll < 0.6:
        status = pick(TARGET)
        ctx["target"] = {} if status is MISSING else {"status": status}
    elif roll < 0.7:
        ctx["target"] = rng.choice(["not a record", ["handling"]])
    else:
        ctx["target"] = None
    ctx["totals"] = {"amount": rng.choice([5, 45, 95, "12", None])}
    return ctx


def interpreted(rules: list[Condition], ctx: Mapping[str, Any], first: bool) -> tuple[int, ...]:
    matched = tuple(i for i, cond in enumerate(rules) if interpret(cond, ctx))
    return matched[:1] if first else matched


@pytest.mark.parametrize("first", [True, False])
def test_compiled_agrees_with_interpreting_every_rule(first: bool) -> None:
    rng = random.Random(11 if first else 12)
    for _ in range(150):
        rules = [rule(rng) for _ in range(rng.randint(1, 14))]
        table = compile_table(rules, first, lambda indices: indices)
        evaluate = evaluator(table)
        for _ in range(60):
            ctx = order(rng)
            assert evaluate(ctx) == interpreted(rules, ctx, first), (rules, ctx)
            assert table.evaluate(ctx) == evaluate(ctx)


def test_first_match_order_with_predicate_rules_interleaved() -> None:
    amount = Condition("gt", path="totals.amount", value=50)
    shipped = Condition("eq", path="status", value="SHIPPED")
    rules = [
        Condition("all", children=(shipped, amount)),  # a predicate rule first
        shipped,  # decided by the table
        Condition("all", children=(shipped, Condition("expr", value="actor == 'seller'"))),
    ]
    evaluate = evaluator(compile_table(rules, True, lambda indices: indices))
    assert evaluate({"status": "SHIPPED", "totals": {"amount": 60}}) == (0,)
    assert evaluate({"status": "SHIPPED", "totals": {"amount": 10}}) == (1,)
    assert evaluate({"status": "PENDING", "totals": {"amount": 60}}) == ()
    every = evaluator(compile_table(rules, False, lambda indices: indices))
    assert every({"status": "SHIPPED", "actor": "seller", "totals": {"amount": 60}}) == (0, 1, 2)


def test_a_case_the_values_decide_is_one_look_up() -> None:
    rules = [Condition("eq", path="status", value="SHIPPED"),
             Condition("in", path="target.status", value=("handling", "invoiced"))]
    table = compile_table(rules, True, lambda indices: indices)
    evaluate = evaluator(table)
    assert evaluate({"status": "X", "target": {"status": "invoiced"}}) == (1,)
    assert evaluate({"status": "X", "target": {"status": "invoiced"}}) == (1,)
    assert all(not isinstance(case, Pending) for case in table.cases.values())
    assert len(table.cases) == 1


def test_unhashable_values_share_the_case_of_unlisted_values() -> None:
    rules = [Condition("not_in", path="status", value=("SHIPPED",)), Condition("true")]
    table = compile_table(rules, True, lambda indices: indices)
    evaluate = evaluator(table)
    assert evaluate({"status": ["SHIPPED"]}) == (0,)
    assert evaluate({"status": {"a": 1}}) == (0,)
    assert list(table.cases) == [(OTHER,)]


def test_split_keeps_value_tests_and_the_rest_in_order() -> None:
    expr = Condition("expr", value="x")
    listed = Condition("in", path="status", value=(["A"], "B"))
    values, rest = split(Condition("all", children=(
        expr, Condition("eq", path="status", value="A"), listed, Condition("exists", path="target", value=True))))
    assert [c.op for c in values] == ["eq", "exists"]
    assert rest == [expr, listed]


def test_an_expr_is_not_run_when_value_tests_rule_the_order_out() -> None:
    broken = Condition("expr", value="1 / 0")
    rules = [Condition("all", children=(broken, Condition("eq", path="status", value="SHIPPED")))]
    evaluate = evaluator(compile_table(rules, True, lambda indices: indices))
    assert evaluate({"status": "PENDING"}) == ()


THRESHOLD_RULES = [
    Condition("all", children=(Condition("eq", path="status", value="SHIPPED"),
                               Condition("gt", path="totals.amount", value=50))),
    Condition("all", children=(Condition("eq", path="status", value="SHIPPED"),
                               Condition("le", path="totals.amount", value=10.5))),
    Condition("all", children=(Condition("eq", path="status", value="SHIPPED"),
                               Condition("ge", path="totals.amount", value=50.0))),
    Condition("all", children=(Condition("eq", path="status", value="SHIPPED"),
                               Condition("lt", path="totals.amount", value=30))),
    Condition("eq", path="status", value="SHIPPED"),
]


@pytest.mark.parametrize("amount", [
    -10**30, 0, 10, 10.5, 10.500001, 29, 29.999, 30, 30.0, 49.9, 50, 50.0, 50.1, 10**30,
    float("inf"), float("-inf"), float("nan"), True, False, None, "60", [60], {"a": 1},
])
def test_numeric_thresholds_decide_a_pending_case_as_the_predicates_do(amount: Any) -> None:
    """A case left to comparisons of one number with thresholds is answered by where the
    number falls among them; equality at a threshold, ints against floats, bools, NaN and
    non-numbers give what running each rule's predicate gives."""
    table = compile_table(THRESHOLD_RULES, True, lambda indices: indices)
    evaluate = evaluator(table)
    ctx = {"status": "SHIPPED", "totals": {"amount": amount}}
    assert evaluate(ctx) == interpreted(THRESHOLD_RULES, ctx, True)
    assert evaluate(ctx) == interpreted(THRESHOLD_RULES, ctx, True)  # from the cached case
    (case,) = table.cases.values()
    assert isinstance(case, Pending) and case.decide is not None
    assert case.decide.__name__ == "decide"  # the threshold form, not the generic loop


@pytest.mark.parametrize("ctx", [
    {"actor": "seller"},  # no status key at all
    {"status": "SHIPPED", "actor": "seller", "target": {}},  # a counterpart without status
    {"status": "SHIPPED", "actor": "seller", "target": "not a record"},
])
def test_the_fast_path_falls_back_for_absent_keys_and_odd_values(ctx: dict[str, Any]) -> None:
    rules = [Condition("eq", path="status", value="SHIPPED"),
             Condition("in", path="target.status", value=("handling",)), Condition("true")]
    evaluate = evaluator(compile_table(rules, True, lambda indices: indices))
    assert evaluate(ctx) == interpreted(rules, ctx, True)
    assert evaluate(ctx) == interpreted(rules, ctx, True)  # and again, from the cached case


def test_a_context_that_is_not_a_plain_dict_is_only_read() -> None:
    from collections import ChainMap, defaultdict
    rules = [Condition("eq", path="status", value="SHIPPED"), Condition("true")]
    evaluate = evaluator(compile_table(rules, True, lambda indices: indices))
    ctx: defaultdict[str, Any] = defaultdict(lambda: "SHIPPED")
    assert evaluate(ctx) == (1,)  # `status` is absent: None, not the default
    assert dict(ctx) == {}
    assert evaluate(ChainMap({"status": "SHIPPED"})) == (0,)


@pytest.mark.parametrize("path, inlined", [
    ("totals.amount", True), ("amount", False), ("totals.amount.value", False), ("items.0", False),
])
@pytest.mark.parametrize("amount", [0, 10, 10.5, 30, 49.9, 50, 50.0, 10**30, float("nan"), None, "60", True])
def test_the_inlined_threshold_answer_is_the_predicates_answer(path: str, inlined: bool, amount: Any) -> None:
    """The generated evaluator answers a threshold case itself (`Regions`) when the number
    sits one level down; it must give what the case's `decide` (and each rule's predicate)
    gives, and leave every other path and value to `decide`."""
    def at(path: str, value: Any) -> dict[str, Any]:
        head, _, rest = path.partition(".")
        if not rest:
            return {head: value}
        if rest.isdigit():
            return {head: [value]}
        return {head: at(rest, value)}

    rules = [Condition("all", children=(leaf.children[0], Condition(
        leaf.children[1].op, path=path, value=leaf.children[1].value)))
        for leaf in THRESHOLD_RULES[:-1]] + [THRESHOLD_RULES[-1]]
    table = compile_table(rules, True, lambda indices: indices)
    evaluate = evaluator(table)
    ctx = {"status": "SHIPPED", **at(path, amount)}
    assert evaluate(ctx) == interpreted(rules, ctx, True)
    (case,) = table.cases.values()
    assert isinstance(case, Pending) and (case.regions is not None) == inlined
    assert evaluate(ctx) == case.decide(ctx) == interpreted(rules, ctx, True)  # from the case
    assert evaluate({"status": "SHIPPED", "totals": "not a record"}) == interpreted(
        rules, {"status": "SHIPPED", "totals": "not a record"}, True)
