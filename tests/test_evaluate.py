"""Evaluation: hit policies, and the rule index agreeing with a plain walk over every rule."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from connector import conditions
from connector.build import flow as build_flow
from connector.evaluate import CompiledFlow, rule_context
from connector.load import load_text
from connector.normalise import canonical

RULES = """
source: amazon
target: vtex
hit_policy: {policy}
rules:
  - id: cancel
    when: {{status: CANCELLED, target.status: {{in: [handling, ready-for-handling]}}}}
    then: [cancel_order]
  - id: invoiced
    when: {{status: CANCELLED, target.status: invoiced}}
    then: [report]
  - id: seller-only
    when: {{status: {{in: [CANCELLED, SHIPPED]}}, actor: seller}}
    then: [report]
  - id: opaque
    when: {{any: [{{actor: amazon}}, {{totals.amount: {{gt: 50}}}}]}}
    then: [watch]
  - id: absent
    when: {{target: {{exists: false}}}}
    then: []
"""


def compiled(policy: str) -> CompiledFlow:
    doc, findings = load_text(RULES.format(policy=policy), "r.yaml")
    assert doc is not None and not findings
    return CompiledFlow(build_flow(doc, "amazon-to-vtex"))


def context(status: str, actor: Any, target: str | None, amount: float = 10) -> dict[str, Any]:
    order = canonical({"id": "1", "status": status, "actor": actor, "totals": {"amount": amount}}, "amazon")
    tgt = canonical({"id": "T", "status": target}, "vtex") if target else None
    return rule_context(order, tgt, {}, {}, {}, "2026-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("policy", "status", "actor", "target", "expected"),
    [
        ("first", "CANCELLED", "seller", "handling", ["cancel"]),
        ("all", "CANCELLED", "seller", "handling", ["cancel", "seller-only"]),
        ("first", "CANCELLED", "amazon", "invoiced", ["invoiced"]),
        ("all", "CANCELLED", "amazon", "invoiced", ["invoiced", "opaque"]),
        ("first", "SHIPPED", "customer", None, ["absent"]),
        ("all", "SHIPPED", "seller", None, ["seller-only", "absent"]),
        ("first", "PENDING", None, "handling", []),
    ],
)
def test_hit_policies(policy: str, status: str, actor: Any, target: str | None, expected: list[str]) -> None:
    decision = compiled(policy).evaluate(context(status, actor, target))
    assert [r.id for r in decision.matched] == expected
    assert [c.action for _, c in decision.actions] == [a for r in decision.matched for a in [c.action for c in r.then]]


@pytest.mark.parametrize("policy", ["first", "all"])
def test_index_agrees_with_walking_every_rule(policy: str) -> None:
    flow = compiled(policy)
    rng = random.Random(3)
    statuses = ["PENDING", "UNSHIPPED", "SHIPPED", "CANCELLED", None]
    for _ in range(2000):
        ctx = context(rng.choice(statuses), rng.choice(["seller", "amazon", "customer", None]),
                      rng.choice([None, "handling", "invoiced", "canceled", "ready-for-handling"]),
                      rng.choice([10, 60]))
        walked = [r.rule.id for r in flow.rules if conditions.compile_condition(r.rule.when)(ctx)]
        if policy == "first":
            walked = walked[:1]
        assert [r.id for r in flow.evaluate(ctx).matched] == walked


def test_explain_marks_rules_after_the_first_match() -> None:
    verdicts = compiled("first").explain(context("CANCELLED", "seller", "handling"))
    assert [(v.rule.id, v.matched, v.considered) for v in verdicts] == [
        ("cancel", True, True), ("invoiced", False, False), ("seller-only", False, False),
        ("opaque", False, False), ("absent", False, False),
    ]


def test_unhashable_status_falls_back_to_every_rule(tmp_path: Path) -> None:
    ctx = context("CANCELLED", "seller", None)
    ctx["status"] = ["CANCELLED"]
    assert [r.id for r in compiled("all").evaluate(ctx).matched] == ["absent"]
