"""Stage 6, evaluate: compiled rules applied to one order, with the flow's hit policy.

Rules compile once into callables and are indexed by the source status and actor they test,
so an order is only checked against rules that can match it: evaluating costs microseconds,
not a walk of the YAML tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector import conditions
from connector.model import ActionCall, Condition, Flow, Rule

_ANY = None


def _values_for(cond: Condition, path: str) -> frozenset[Any] | None:
    """Values of `path` a rule can match, from its top-level tests; None = unconstrained."""
    leaves = cond.children if cond.op == "all" else (cond,)
    allowed: frozenset[Any] | None = None
    for leaf in leaves:
        if leaf.path != path:
            continue
        if leaf.op == "eq":
            values = frozenset([leaf.value])
        elif leaf.op == "in":
            values = frozenset(leaf.value)
        else:
            continue
        allowed = values if allowed is None else allowed & values
    return allowed


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int
    predicate: conditions.Predicate
    statuses: frozenset[Any] | None
    actors: frozenset[Any] | None
    targets: frozenset[Any] | None  # the counterpart statuses it can match


@dataclass(frozen=True)
class Decision:
    """The outcome for one order: matching rules (in order) and the actions they call."""

    matched: tuple[Rule, ...]
    actions: tuple[tuple[Rule, ActionCall], ...]


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    matched: bool
    reasons: tuple[str, ...]
    considered: bool  # false when the index ruled it out, or `first` had already matched


class CompiledFlow:
    """A flow's rules compiled for repeated evaluation."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.rules = [
            CompiledRule(
                rule=rule,
                index=i,
                predicate=conditions.compile_condition(rule.when),
                statuses=_values_for(rule.when, "status"),
                actors=_values_for(rule.when, "actor"),
                targets=_values_for(rule.when, "target.status"),
            )
            for i, rule in enumerate(flow.rules)
        ]
        self._index: dict[tuple[Any, Any, Any], list[CompiledRule]] = {}

    def candidates(self, status: Any, actor: Any, target_status: Any = None) -> list[CompiledRule]:
        """Rules that can match an order with this status, actor and counterpart status, in
        file order (a rule's top-level tests on those fields decide; the rest is checked)."""
        key = (status, actor, target_status)
        try:
            found = self._index.get(key)
        except TypeError:  # an unhashable value (a list where a status belongs): no index
            return list(self.rules)
        if found is None:
            try:
                found = [
                    r for r in self.rules
                    if (r.statuses is None or status in r.statuses)
                    and (r.actors is None or actor in r.actors)
                    and (r.targets is None or target_status in r.targets)
                ]
            except TypeError:  # an unhashable value: no index, check every rule
                return list(self.rules)
            if len(self._index) < 10_000:
                self._index[key] = found
        return found

    def evaluate(self, context: Mapping[str, Any]) -> Decision:
        matched: list[Rule] = []
        target = context.get("target")
        target_status = target.get("status") if isinstance(target, Mapping) else None
        for compiled in self.candidates(context.get("status"), context.get("actor"), target_status):
            if compiled.predicate(context):
                matched.append(compiled.rule)
                if self.flow.hit_policy == "first":
                    break
        actions = tuple((rule, call) for rule in matched for call in rule.then)
        return Decision(tuple(matched), actions)

    def explain(self, context: Mapping[str, Any]) -> list[Verdict]:
        """Every rule's verdict with the conditions that decided it (for `explain`)."""
        verdicts = []
        done = False
        for compiled in self.rules:
            ok, reasons = conditions.explain(compiled.rule.when, context)
            considered = not done
            verdicts.append(Verdict(compiled.rule, ok and considered, tuple(reasons), considered))
            if ok and considered and self.flow.hit_policy == "first":
                done = True
        return verdicts


def rule_context(
    order: Mapping[str, Any],
    target: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    systems: Mapping[str, Mapping[str, Any]],
    outputs: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """What rule conditions and argument templates see (docs/format.md)."""
    context = dict(order)
    context.update(
        order=order, source=order, target=target, settings=dict(settings),
        systems={k: dict(v) for k, v in systems.items()}, outputs=dict(outputs), now=now,
    )
    return context
