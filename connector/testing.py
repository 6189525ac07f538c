"""`connector test`: rule test cases (order in → expected actions out), run like unit tests.

Test cases live in the rule files' `tests:`; a case passes when the actions that would run
(precondition holding) are exactly the expected ones, in order, with the expected arguments
where the case gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError
from connector.model import ActionCall, RuleTest
from connector.normalise import canonical, normalise
from connector.plan import FlowRuntime, plan_order, prepare, resolve
from connector.project import Config

TEST_NOW = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class CaseResult:
    flow: str
    case: RuleTest
    passed: bool
    diff: tuple[str, ...]


def orders_for(runtime: FlowRuntime, case: RuleTest) -> tuple[dict[str, Any], dict[str, Any] | None]:
    order = (normalise(runtime.source, case.order) if case.raw
             else canonical(case.order, runtime.source))
    target = None
    if case.target is not None:
        target = (normalise(runtime.target, case.target) if case.target_raw
                  else canonical(case.target, runtime.target))
    return order, target


def _expected_name(runtime: FlowRuntime, call: ActionCall) -> str:
    system, action = resolve(runtime.flow, runtime.systems, call)
    return f"{system}.{call.name}" if action is not None else call.action


def run_case(config: Config, flow_name: str, case: RuleTest, environ: Mapping[str, str]) -> CaseResult:
    runtime = prepare(config, flow_name, environ, case.settings, case.systems)
    try:
        order, target = orders_for(runtime, case)
        planned, decision = plan_order(runtime, order, target, case.outputs, TEST_NOW)
        expected = [(_expected_name(runtime, c), c.args) for c in case.expect]
    except ConnectorError as exc:
        return CaseResult(flow_name, case, False, (f"error: {exc}",))
    actual = [p for p in planned if p.runnable]
    diff: list[str] = []
    names_actual = [p.name for p in actual]
    names_expected = [name for name, _ in expected]
    if names_actual != names_expected:
        diff.append(f"expected actions: {names_expected or '(none)'}")
        diff.append(f"  actual actions: {names_actual or '(none)'}")
    else:
        for (name, want), got in zip(expected, actual):
            for key, value in want.items():
                if got.args.get(key) != value:
                    diff.append(f"{name}: argument {key!r}: expected {value!r}, got {got.args.get(key)!r}")
    matched = [r.id for r in decision.matched]
    if case.expect_rules is not None and list(case.expect_rules) != matched:
        diff.append(f"expected rules: {list(case.expect_rules)}")
        diff.append(f"  actual rules: {matched or '(none)'}")
    if diff:
        skipped = [f"{p.name} (precondition: {'; '.join(p.reasons)})" for p in planned if not p.runnable]
        if skipped:
            diff.append(f"skipped by precondition: {', '.join(skipped)}")
        diff.append(f"matched rules: {matched or '(none)'}")
    return CaseResult(flow_name, case, not diff, tuple(diff))


def run_all(config: Config, flows: Sequence[str], environ: Mapping[str, str]) -> list[CaseResult]:
    results = []
    for name in flows:
        flow = config.flows[name]
        for case in flow.tests:
            results.append(run_case(config, name, case, environ))
    return results
