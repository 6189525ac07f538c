from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from connector import conditions
from connector.load import load_text


def parse(yaml_text: str) -> Any:
    doc, findings = load_text(yaml_text, "c.yaml")
    assert doc is not None and not findings
    return conditions.parse(doc.data, "c.yaml", (), lambda p, k: doc.position(p, key=k))


CTX = {
    "status": "CANCELLED", "actor": "seller", "fulfilment": "merchant", "totals": {"amount": 12.5},
    "items": [{"sku": "A"}], "target": {"status": "handling"}, "settings": {"mode": "leave"},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("status: CANCELLED", True),
        ("status: SHIPPED", False),
        ("actor: {in: [seller, amazon]}", True),
        ("actor: {not_in: [seller]}", False),
        ("target.status: {in: [handling]}", True),
        ("target: {exists: true}", True),
        ("target: {exists: false}", False),
        ("missing.path: {exists: false}", True),
        ("missing.path: null", True),
        ("totals.amount: {gt: 10}", True),
        ("totals.amount: {le: 10}", False),
        ("items.0.sku: A", True),
        ("items.5.sku: {exists: true}", False),
        ("{status: CANCELLED, actor: amazon}", False),
        ("any: [{actor: amazon}, {actor: seller}]", True),
        ("not: {status: CANCELLED}", False),
        ("all: [{status: CANCELLED}, {not: {settings.mode: accept}}]", True),
        ("expr: \"items | length == 1\"", True),
        ("status: {ne: SHIPPED}", True),
        ("totals.amount: {lt: abc}", False),
    ],
)
def test_compiled_conditions(condition: str, expected: bool) -> None:
    predicate = conditions.compile_condition(parse(condition))
    assert predicate(CTX) is expected


# a two-part path's `in`/`not_in` runs in one frame of its own (`_member_two`): every shape
# the counterpart can take, as the general look-up answers
TWO_PART = [
    ({"target": {"status": "handling"}}, True),
    ({"target": {"status": "invoiced"}}, False),
    ({"target": {}}, False),
    ({"target": None}, False),
    ({}, False),
    ({"target": MappingProxyType({"status": "handling"})}, True),
    ({"target": {"status": ["handling"]}}, False),  # unhashable: in no list
    ({"target": ["handling"]}, False),
]


@pytest.mark.parametrize(("ctx", "inside"), TWO_PART)
def test_membership_on_a_two_part_path(ctx: dict[str, Any], inside: bool) -> None:
    assert conditions.compile_condition(parse("target.status: {in: [handling, null]}"))(ctx) \
        is (inside or conditions.lookup(ctx, "target.status") in (None, conditions.MISSING))
    assert conditions.compile_condition(parse("target.status: {not_in: [handling]}"))(ctx) is not inside


def test_explain_names_the_failing_leaf() -> None:
    ok, reasons = conditions.explain(parse("{status: CANCELLED, actor: amazon}"), CTX)
    assert not ok
    assert reasons == ["actor == 'amazon' (is 'seller')"]


def test_explain_missing_value() -> None:
    ok, reasons = conditions.explain(parse("target.id: X"), CTX)
    assert not ok and reasons == ["target.id == 'X' (is missing)"]


def test_positions_point_at_keys() -> None:
    cond = parse("a: 1\nany:\n  - b: 2\n")
    assert cond.op == "all"
    assert (cond.children[0].where.line, cond.children[0].where.column) == (1, 1)
    inner = cond.children[1].children[0]
    assert (inner.path, inner.where.line, inner.where.column) == ("b", 3, 5)


EXPLAINED = [
    "{status: CANCELLED, actor: amazon}", "any: [{actor: amazon}, {totals.amount: {gt: 1}}]",
    "not: {target.status: {in: [handling]}}", "target.id: X", "flag: 1", "flag: {exists: true}",
    "zero: 0.0", "expr: \"items | length == 1\"", "expr: \"nothing.there\"",
    "target: {exists: true}",
    "items.0.sku: {in: [A, B]}", "totals.amount: {lt: abc}",
]


@pytest.mark.parametrize("condition", EXPLAINED)
@pytest.mark.parametrize("extra", [{}, {"flag": True}, {"flag": 1}, {"flag": None}, {"zero": -0.0},
                                   {"zero": 0.0}, {"actor": ["unhashable"]}])
def test_explainer_gives_what_explain_gives(condition: str, extra: dict[str, Any]) -> None:
    """The compiled explainer (planning's) must word every verdict as `explain` does,
    calls repeated (its memo) and values equal but spelt differently (True, 1) included."""
    cond = parse(condition)
    explain = conditions.explainer(cond)
    for ctx in ({**CTX, **extra}, {**CTX, "flag": 1}, {**CTX, **extra},
                {**CTX, "flag": True, "zero": 0.0}):
        assert explain(ctx) == conditions.explain(cond, ctx)
