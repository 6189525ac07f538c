"""Stage 7, plan: a decision's action calls → concrete planned actions.

Each planned action has its arguments rendered, its precondition evaluated against the order
it acts on, and a deterministic idempotency key, so that `plan`, `explain`, `test` and `apply`
all agree on what would be done and `apply` can do it exactly once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector import conditions, templates
from connector.errors import ConnectorError, UndeclaredValue
from connector.evaluate import CompiledFlow, rule_context
from connector.model import BUILTIN_ACTIONS, Action, ActionCall, Condition, Flow, Rule, System
from connector.normalise import undeclared
from connector.project import Config, resolve_settings
from connector.render import Redactor, secret_headers, secret_values


@dataclass(frozen=True)
class FlowRuntime:
    """A flow ready to evaluate: compiled rules, its two systems and resolved settings."""

    flow: Flow
    compiled: CompiledFlow
    systems: dict[str, System]
    settings: dict[str, Any]  # the flow's settings
    system_settings: dict[str, dict[str, Any]]  # every setting, secrets included
    public_settings: dict[str, dict[str, Any]]  # non-secret ones, for rule conditions
    redact: Redactor = field(default_factory=Redactor)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> System:
        return self.systems[self.flow.source]

    @property
    def target(self) -> System:
        return self.systems[self.flow.target]


def prepare(
    config: Config,
    flow_name: str,
    environ: Mapping[str, str] | None = None,
    flow_overrides: Mapping[str, Any] | None = None,
    system_overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> FlowRuntime:
    """Compile a flow and resolve its settings (defaults ← connector.yaml ← environment)."""
    flow = config.flows[flow_name]
    systems = {name: config.systems[name] for name in (flow.source, flow.target) if name in config.systems}
    missing = [n for n in (flow.source, flow.target) if n not in systems]
    if missing:
        raise ConnectorError(f"flow {flow_name}: no mapping for system {missing[0]!r}")
    system_settings: dict[str, dict[str, Any]] = {}
    secrets: list[str] = []
    headers: list[str] = []
    for name, system in systems.items():
        values = resolve_settings(system.settings, config.system_settings.get(name, {}), name, environ)
        values.update((system_overrides or {}).get(name, {}))
        system_settings[name] = values
        secrets += secret_values(system.settings, values)
        headers += secret_headers(system)
    public = {
        name: {k: v for k, v in values.items() if not systems[name].settings[k].secret}
        for name, values in system_settings.items()
    }
    settings = resolve_settings(flow.settings, config.flow_settings.get(flow_name, {}), f"flow_{flow_name}", environ)
    settings.update(flow_overrides or {})
    return FlowRuntime(
        flow=flow,
        compiled=CompiledFlow(flow),
        systems=systems,
        settings=settings,
        system_settings=system_settings,
        public_settings=public,
        redact=Redactor().extended(secrets).with_headers(headers),
        options=dict(config.flow_options.get(flow_name, {})),
    )


def resolve(flow: Flow, systems: Mapping[str, System], call: ActionCall) -> tuple[str, Action | None]:
    """The system and action a `then` item names; builtins have no system or action."""
    if call.action in BUILTIN_ACTIONS:
        return "", None
    if call.system:
        system = systems.get(call.system)
        if system is None or call.name not in system.actions:
            raise ConnectorError(f"{call.where}: unknown action {call.action!r}")
        return call.system, system.actions[call.name]
    owners = [s for s in (flow.source, flow.target) if s in systems and call.name in systems[s].actions]
    if len(owners) != 1:
        raise ConnectorError(f"{call.where}: action {call.action!r} is unknown or ambiguous")
    return owners[0], systems[owners[0]].actions[call.name]


@dataclass(frozen=True)
class Planned:
    """One action that a rule chose for one order."""

    flow: str
    rule: Rule
    call: ActionCall
    system: str
    action: Action | None
    args: dict[str, Any]
    context: dict[str, Any]  # the action context steps render with
    key: str
    runnable: bool
    reasons: tuple[str, ...]  # why the precondition failed (when not runnable)

    @property
    def name(self) -> str:
        return f"{self.system}.{self.call.name}" if self.system else self.call.action

    @property
    def mutating(self) -> bool:
        return self.action is not None and self.action.mutating


@functools.lru_cache(maxsize=1024)
def _predicate(cond: Condition) -> conditions.Predicate:
    return conditions.compile_condition(cond)


def idempotency_key(flow: str, order: Mapping[str, Any], action: str, args: Mapping[str, Any],
                    subject: Mapping[str, Any] | None) -> str:
    """Deterministic: the same action on the same order version gives the same key.

    The version is the source order's `updated_at` plus the status of the order acted on, so
    that a second VTEX cancel (from `cancellation-requested`) is a new key while a rerun on
    unchanged orders repeats none.
    """
    material = json.dumps(
        [flow, order.get("id"), action, args, order.get("updated_at"),
         subject.get("status") if subject else None],
        sort_keys=True, default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def plan_order(
    runtime: FlowRuntime,
    order: Mapping[str, Any],
    target: Mapping[str, Any] | None,
    outputs: Mapping[str, Any],
    now: str,
) -> tuple[list[Planned], Any]:
    """Evaluate one order and plan the chosen actions. Returns (planned, decision).

    An order or counterpart holding a value its mapping does not declare is refused
    (`UndeclaredValue`): no rule was written for it, so none of their verdicts is a decision.
    """
    problems = undeclared(runtime.source, order)
    if target is not None:
        problems += undeclared(runtime.target, target)
    if problems:
        raise UndeclaredValue("; ".join(problems))
    flow = runtime.flow
    context = rule_context(order, target, runtime.settings, runtime.public_settings, outputs, now)
    decision = runtime.compiled.evaluate(context)
    planned = [
        plan_call(runtime, rule, call, context, order, target, outputs, now)
        for rule, call in decision.actions
    ]
    del flow
    return planned, decision


def plan_call(
    runtime: FlowRuntime,
    rule: Rule,
    call: ActionCall,
    context: Mapping[str, Any],
    order: Mapping[str, Any],
    target: Mapping[str, Any] | None,
    outputs: Mapping[str, Any],
    now: str,
) -> Planned:
    flow = runtime.flow
    system_name, action = resolve(flow, runtime.systems, call)
    defaults = {n: p.default for n, p in action.params.items()} if action else {}
    args = templates.render_value({**defaults, **call.args}, context)
    subject: Mapping[str, Any] | None = None
    action_context: dict[str, Any] = {"source": order, "target": target, "args": args, "now": now}
    runnable: bool = True
    reasons: tuple[str, ...] = ()
    if action is not None:
        subject = order if system_name == flow.source else target
        action_context = {
            "order": subject, "source": order, "target": target, "args": args,
            "settings": runtime.system_settings[system_name], "steps": {},
            "outputs": dict(outputs), "now": now,
        }
        if action.precondition is not None:
            runnable = _predicate(action.precondition)(action_context)
            if not runnable:
                _, why = conditions.explain(action.precondition, action_context)
                reasons = tuple(why)
    elif call.action == "report":
        args.setdefault("level", "info")
        args.setdefault("message", rule.description or rule.id)
    elif call.action == "watch":
        args.setdefault("hours", runtime.options.get("watch_hours", 48))
    name = f"{system_name}.{call.name}" if system_name else call.action
    key = idempotency_key(flow.name, order, name, args, subject if action else target)
    return Planned(flow.name, rule, call, system_name, action, args, action_context, key, runnable, reasons)
