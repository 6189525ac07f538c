"""Stage 6, evaluate: compiled rules applied to one order, with the flow's hit policy.

Rules compile once into a look-up table over the values they test (`evaluate.table`): an
order's case (status, actor, fulfilment, counterpart status...) maps straight to its decision,
and only tests that are not comparisons with values run as predicates, in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connector import conditions
from connector.evaluate.table import compile_table, evaluator
from connector.model import ActionCall, Flow, Rule


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int
    predicate: conditions.Predicate


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
    """A flow's rules compiled for repeated evaluation: a look-up table over the values the
    rules test (`evaluate.table`), with the other tests run as predicates in file order."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.rules = [
            CompiledRule(rule=rule, index=i, predicate=conditions.compile_condition(rule.when))
            for i, rule in enumerate(flow.rules)
        ]
        self.table = compile_table([rule.when for rule in flow.rules], flow.hit_policy == "first",
                                   self._decision)
        #: The matching rules (the first only, under `hit_policy: first`) and their actions.
        self.evaluate: Callable[[Mapping[str, Any]], Decision] = evaluator(self.table)

    def _decision(self, indices: tuple[int, ...]) -> Decision:
        matched = tuple(self.flow.rules[i] for i in indices)
        return Decision(matched, tuple((rule, call) for rule in matched for call in rule.then))

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
