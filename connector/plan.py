"""Stage 7, plan: a decision's action calls → concrete planned actions.

Each planned action has its arguments rendered, its precondition evaluated against the order
it acts on, and a deterministic idempotency key, so that `plan`, `explain`, `test` and `apply`
all agree on what would be done and `apply` can do it exactly once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

from connector import conditions, templates
from connector.errors import ConnectorError, UndeclaredValue
from connector.evaluate import CompiledFlow
from connector.model import BUILTIN_ACTIONS, Action, ActionCall, Flow, Rule, System
from connector.normalise import declared_check, undeclared
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
    #: Each `then` item's order-independent part, prepared on first use (see `_prepared`).
    calls: dict[int, tuple[ActionCall, _CallPlan]] = field(
        default_factory=dict, init=False, compare=False, repr=False)

    @functools.cached_property
    def rule_settings(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The flow's settings and the systems' public ones as rule contexts hold them:
        copied once per runtime rather than once per order, since conditions and the
        sandboxed templates only read them."""
        return dict(self.settings), {k: dict(v) for k, v in self.public_settings.items()}

    @functools.cached_property
    def declared(self) -> Callable[[Mapping[str, Any], Mapping[str, Any] | None], bool]:
        """`normalise.declared_check` of the source and the target: whether an order and its
        counterpart hold only declared values, asked of every order before `undeclared`
        words what is not."""
        return declared_check(self.source, self.target)

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
    for name, system in list(systems.items()):
        values = resolve_settings(system.settings, config.system_settings.get(name, {}), name, environ)
        values.update((system_overrides or {}).get(name, {}))
        if (variant := system.variant_for(values)) is not system:  # its settings may add some
            systems[name] = system = variant
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
        redact=Redactor().extended(secrets).with_headers(headers).with_query_params(
            name for system in systems.values() for name in system.secret_query_params),
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


_KEY_JSON = json.JSONEncoder(sort_keys=True, default=str).encode
_ESCAPE = encode_basestring_ascii


def _key_json(value: Any) -> str:
    """`value` as `idempotency_key`'s `json.dumps(..., sort_keys=True, default=str)` writes
    it inside its list (strings, the usual case, straight through the C escaper; `plan_call`
    inlines this for the order's fields)."""
    return _ESCAPE(value) if type(value) is str else _KEY_JSON(value)


def idempotency_key(flow: str, order: Mapping[str, Any], action: str, args: Mapping[str, Any],
                    subject: Mapping[str, Any] | None) -> str:
    """Deterministic: the same action on the same order version gives the same key.

    The version is the source order's `updated_at` plus the status of the order acted on, so
    that a second VTEX cancel (from `cancellation-requested`) is a new key while a rerun on
    unchanged orders repeats none. (`plan_call` writes the same material piece by piece.)
    """
    material = json.dumps(
        [flow, order.get("id"), action, args, order.get("updated_at"),
         subject.get("status") if subject else None],
        sort_keys=True, default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _is_constant(value: Any) -> bool:
    """No template anywhere in `value`: `render_value` would give it back unchanged."""
    if isinstance(value, str):
        return "{" not in value
    if isinstance(value, Mapping):
        return all(_is_constant(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_constant(v) for v in value)
    return True


def _fresh(value: Any) -> Any:
    """A copy of constant arguments as `render_value` builds them (new dicts and lists,
    `str` keys), so that no two planned actions share a mutable argument."""
    if isinstance(value, Mapping):
        return {str(k): _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


@dataclass(frozen=True)
class _CallPlan:
    """What planning a `then` item needs that no order changes, worked out once per runtime:
    planning is on the hot path (every order of every run), and resolving the action, merging
    its defaults, rendering constant arguments and encoding them for the key gave the same
    answer for each order (the arguments of most shipped rules are constants)."""

    flow: str
    system: str
    action: Action | None
    name: str
    args: dict[str, Any]  # defaults, then the call's arguments, as written
    constant: dict[str, Any] | None  # the arguments rendered, builtin defaults set, if constant
    flat: bool  # the constant arguments hold no dict or list: a shallow copy is a fresh one
    constant_json: str  # their key material, when constant
    on_source: bool  # the action acts on the source order (else on the counterpart)
    settings: dict[str, Any]
    precondition: conditions.Predicate | None
    explain: conditions.Explainer | None  # why the precondition failed
    key_head: str  # the key material before the order's id
    key_name: str  # between the order's id and the arguments


def _builtin_defaults(runtime: FlowRuntime, rule: Rule, call: ActionCall,
                      args: dict[str, Any]) -> None:
    """What `report` and `watch` take when the rule leaves it out."""
    if call.action == "report":
        args.setdefault("level", "info")
        args.setdefault("message", rule.description or rule.id)
    elif call.action == "watch":
        args.setdefault("hours", runtime.options.get("watch_hours", 48))


def _prepared(runtime: FlowRuntime, rule: Rule, call: ActionCall) -> _CallPlan:
    """The call's `_CallPlan`, made on its first use (so an unknown action is still refused
    when a rule calling it is planned, as before)."""
    entry = runtime.calls.get(id(call))
    if entry is not None and entry[0] is call:
        return entry[1]
    flow = runtime.flow
    system_name, action = resolve(flow, runtime.systems, call)
    defaults = {n: p.default for n, p in action.params.items()} if action else {}
    args = {**defaults, **call.args}
    constant: dict[str, Any] | None = None
    if _is_constant(args):
        constant = _fresh(args)
        if action is None:
            _builtin_defaults(runtime, rule, call, constant)
    name = f"{system_name}.{call.name}" if system_name else call.action
    plan = _CallPlan(
        flow=flow.name, system=system_name, action=action, name=name, args=args, constant=constant,
        flat=constant is not None and not any(isinstance(v, (Mapping, list))
                                              for v in constant.values()),
        constant_json=_key_json(constant) if constant is not None else "",
        on_source=action is not None and system_name == flow.source,
        settings=runtime.system_settings[system_name] if action is not None else {},
        precondition=(conditions.compile_condition(action.precondition)
                      if action is not None and action.precondition is not None else None),
        explain=(conditions.explainer(action.precondition)
                 if action is not None and action.precondition is not None else None),
        key_head="[" + _key_json(flow.name) + ", ", key_name=", " + _key_json(name) + ", ",
    )
    runtime.calls[id(call)] = (call, plan)
    return plan


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
    The rule context is `rule_context`'s, built with the runtime's settings copied once
    (`FlowRuntime.rule_settings`) instead of once per order.
    """
    if not runtime.declared(order, target):
        problems = undeclared(runtime.source, order)
        if target is not None:
            problems += undeclared(runtime.target, target)
        if problems:
            raise UndeclaredValue("; ".join(problems))
    settings, systems = runtime.rule_settings
    # `rule_context`'s dict, made by copying the order and storing the rest: half the cost
    # of one dict display spreading the order (which grows the new dict more than once)
    context = dict(order)
    context["order"] = order
    context["source"] = order
    context["target"] = target
    context["settings"] = settings
    context["systems"] = systems
    context["outputs"] = {**outputs}
    context["now"] = now
    decision = runtime.compiled.evaluate(context)
    if not decision.actions:
        return [], decision
    planned = []  # a loop, not a comprehension: one frame fewer per order (before 3.12)
    for rule, call in decision.actions:
        planned.append(plan_call(runtime, rule, call, context, order, target, outputs, now))
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
    """One `then` item planned for one order: its arguments rendered, its precondition
    evaluated against the order it acts on, and its idempotency key."""
    entry = runtime.calls.get(id(call))  # `_prepared`'s look-up, inlined for the hot path
    plan = entry[1] if entry is not None and entry[0] is call else _prepared(runtime, rule, call)
    action = plan.action
    if plan.constant is not None:
        args = plan.constant.copy() if plan.flat else _fresh(plan.constant)
        args_json = plan.constant_json
    else:
        args = templates.render_value(plan.args, context)
        if action is None:
            _builtin_defaults(runtime, rule, call, args)
        args_json = _key_json(args)
    runnable: bool = True
    reasons: tuple[str, ...] = ()
    if action is not None:
        subject = order if plan.on_source else target
        action_context: dict[str, Any] = {
            "order": subject, "source": order, "target": target, "args": args,
            "settings": plan.settings, "steps": {}, "outputs": {**outputs}, "now": now,
        }
        if plan.precondition is not None and plan.explain is not None:
            runnable = plan.precondition(action_context)
            if not runnable:
                reasons = tuple(plan.explain(action_context)[1])
    else:
        subject = target
        action_context = {"source": order, "target": target, "args": args, "now": now}
    order_id, updated = order.get("id"), order.get("updated_at")
    status = subject.get("status") if subject else None
    material = (f"{plan.key_head}"
                f"{_ESCAPE(order_id) if type(order_id) is str else _KEY_JSON(order_id)}"
                f"{plan.key_name}{args_json}, "
                f"{_ESCAPE(updated) if type(updated) is str else _KEY_JSON(updated)}, "
                f"{_ESCAPE(status) if type(status) is str else _KEY_JSON(status)}]")
    planned: Planned = _NEW(Planned)
    _SET(planned, "__dict__", {
        "flow": plan.flow, "rule": rule, "call": call, "system": plan.system,
        "action": action, "args": args, "context": action_context,
        "key": _SHA256(material.encode()).hexdigest()[:32], "runnable": runnable,
        "reasons": reasons})
    return planned


#: `Planned` is made without the frozen dataclass's `__init__`, which sets each field through
#: `object.__setattr__` and cost more than the rest of planning an action: the instance is
#: the same (fields, equality, immutability afterwards).
_NEW, _SET = object.__new__, object.__setattr__
_SHA256 = hashlib.sha256
