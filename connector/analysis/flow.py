"""Static analysis of one rule file over the systems' declared domains.

`validate` promises more than a schema check: it tells an integrator, with line numbers,
which rule can never fire, which combinations of the source's status × actor × fulfilment
no rule handles, which rules collide under `hit_policy: all`, and which actions a rule calls
in states where the action's precondition always skips it. DMN tools do this only inside the
JVM and skip free-text columns; here the domains are declared in the mappings, so the
analysis is exact over them (see `analysis.space` for how conditions become case sets).

Every finding errs on the side of silence: a test the analysis cannot see through (an
`expr`, an attribute, a comparison) is assumed to go whichever way avoids a false report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.analysis.coverage import SOURCE_FIELDS, Calls, Masks, conflicts, gaps, unreachable
from connector.analysis.space import ABSENT, PRESENT, Dim, Evaluator, Resolver, Space, nest, presence, show
from connector.conditions import describe, leaves
from connector.diagnostics import Diagnostic, did_you_mean, error, warning
from connector.model import BUILTIN_ACTIONS, Action, ActionCall, Flow, Setting, System

#: Above this many cases, optional dimensions (settings, flags) are dropped and become opaque.
MAX_CASES = 250_000
EQUALITY_OPS = ("eq", "ne", "in", "not_in")


def analyse_flow(flow: Flow, systems: Mapping[str, System]) -> list[Diagnostic]:
    """Every analysis finding for one flow, sorted by position.

    Systems missing from `systems` are skipped silently: references are checked elsewhere.
    """
    source, target = systems.get(flow.source), systems.get(flow.target)
    calls = [[(call, _resolve_action(call, flow, systems)) for call in r.then] for r in flow.rules]
    candidates = _candidates(flow, source, target)
    rule_resolver = _rule_resolver(candidates)
    candidates.update(_flag_dims(flow, rule_resolver))
    action_resolvers = {
        (a.system, side): _action_resolver(side, a.system, candidates)
        for per_rule in calls
        for _, a in per_rule
        if a is not None and (side := _side(a, flow))
    }
    space = _space(flow, candidates, rule_resolver, action_resolvers, calls)
    evaluator = Evaluator(space, rule_resolver)
    masks = [evaluator.masks(rule.when) for rule in flow.rules]

    findings, typos = _unknown_values(flow, candidates, rule_resolver)
    shadowed, dead = unreachable(flow, masks, typos)
    findings += shadowed
    if flow.hit_policy == "all":
        findings += conflicts(flow, space, masks, calls)
    if source is not None:
        findings += gaps(flow, space, masks)
    pre_evaluators = {key: Evaluator(space, r) for key, r in action_resolvers.items()}
    findings += _preconditions(flow, space, masks, calls, dead, pre_evaluators)
    return sorted(findings)


# --- the case space ---------------------------------------------------------------------


def _candidates(flow: Flow, source: System | None, target: System | None) -> dict[str, Dim]:
    """Every dimension the flow could use; only those some test mentions are kept later."""
    dims: dict[str, Dim] = {}
    if source is not None:
        d, n = source.domains, source.name
        if d.status:
            dims["status"] = Dim("status", d.status, d.status, f"a status of {n}", f"domains.status of {n}")
        # An order nobody cancelled has no actor: None is always a value of the dimension.
        dims["actor"] = Dim("actor", d.actor + (None,), d.actor, f"an actor of {n}", f"domains.actor of {n}")
        if d.fulfilment:
            dims["fulfilment"] = Dim(
                "fulfilment", d.fulfilment, d.fulfilment,
                f"a fulfilment channel of {n}", f"domains.fulfilment of {n}",
            )
    if target is not None and target.domains.status:
        t, statuses = target.name, target.domains.status
        dims["target"] = Dim(
            "target", (ABSENT,) + statuses, statuses, f"a status of {t}", f"domains.status of {t}"
        )
    for name, setting in flow.settings.items():
        _add_setting(dims, f"settings.{name}", setting, f"setting '{name}'")
    for system in {s.name: s for s in (source, target) if s is not None}.values():
        for name, setting in system.settings.items():
            _add_setting(dims, f"systems.{system.name}.{name}", setting, f"{system.name} setting '{name}'")
    return dims


def _add_setting(dims: dict[str, Dim], key: str, setting: Setting, label: str) -> None:
    values = setting.enum or ((True, False) if setting.kind == "boolean" else ())
    if values:
        dims[key] = Dim(key, tuple(values), tuple(values), f"a value of {label}", f"the values of {label}")


def _rule_resolver(candidates: Mapping[str, Dim]) -> Resolver:
    """Rule context: bare paths are the source order, `target.*` the counterpart."""

    def resolve(path: str) -> Any:
        if path in ("target", "target.status"):
            return ("target", presence("target"))
        if path in candidates and path != "target":
            return (path, nest(path))
        return None

    return resolve


def _action_resolver(side: str, system: str, candidates: Mapping[str, Dim]) -> Resolver:
    """Action context: `order` is the action's own system's order, `settings` its settings."""

    def resolve(path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "order" and side == "target" or head == "target":
            return ("target", presence(head)) if rest in ("", "status") else None
        if head in ("order", "source"):
            return (rest, nest(path)) if rest in SOURCE_FIELDS else None
        key = f"systems.{system}.{rest}"
        return (key, nest(path)) if head == "settings" and key in candidates else None

    return resolve


def _flag_dims(flow: Flow, resolve: Resolver) -> dict[str, Dim]:
    """Opaque paths tested only against true/false (and null): a small finite dimension.

    The value null is kept so that `x: true` and `x: false` do not shadow a rule that
    ignores x; the gap check leaves null out (see `analysis.coverage.gaps`).
    """
    tests: dict[str, list[Any]] = {}
    for rule in flow.rules:
        for leaf in leaves(rule.when):
            if leaf.op in ("true", "expr") or leaf.path.split(".")[0] == "target":
                continue
            if resolve(leaf.path) is None:
                tests.setdefault(leaf.path, []).append(leaf)
    flags: dict[str, Dim] = {}
    for path, found in tests.items():
        literals: list[Any] = []
        for leaf in found:
            if leaf.op in ("in", "not_in"):
                literals.extend(leaf.value)
            elif leaf.op in ("eq", "ne"):
                literals.append(leaf.value)
            elif leaf.op != "exists":
                break
        else:
            if all(v is None or isinstance(v, bool) for v in literals) and any(
                isinstance(v, bool) for v in literals
            ):
                flags[path] = Dim(path, (True, False, None))
            elif not literals:
                # Tested only for presence (`outputs.reserve_stock.reservation_id: {exists:
                # true}`): present or absent are the only cases, so such rules are not opaque
                # and a combination they leave unhandled is a gap.
                flags[path] = Dim(path, (PRESENT, None), known=())
    return flags


def _space(
    flow: Flow,
    candidates: Mapping[str, Dim],
    rule_resolver: Resolver,
    action_resolvers: Mapping[tuple[str, str], Resolver],
    calls: Sequence[Calls],
) -> Space:
    """The source and target dimensions, plus the optional ones some test mentions."""
    mentioned: set[str] = set()
    for rule in flow.rules:
        mentioned.update(_keys(leaves(rule.when), rule_resolver))
    for per_rule in calls:
        for _, action in per_rule:
            side = _side(action, flow) if action is not None else ""
            if action is not None and side and action.precondition is not None:
                resolver = action_resolvers[(action.system, side)]
                mentioned.update(_keys(leaves(action.precondition), resolver))
    base = [k for k in ("status", "actor", "fulfilment", "target") if k in candidates]
    optional = [k for k in candidates if k not in base and k in mentioned]
    while optional and _size(candidates, base + optional) > MAX_CASES:
        optional.pop()  # its tests become opaque: still sound, only less precise
    return Space([candidates[k] for k in base + optional])


def _keys(tests: Sequence[Any], resolve: Resolver) -> set[str]:
    found = (resolve(t.path) for t in tests if t.op not in ("true", "expr"))
    return {f[0] for f in found if f is not None}


def _size(candidates: Mapping[str, Dim], keys: Sequence[str]) -> int:
    size = 1
    for key in keys:
        size *= len(candidates[key].values)
    return size


# --- actions ----------------------------------------------------------------------------


def _resolve_action(call: ActionCall, flow: Flow, systems: Mapping[str, System]) -> Action | None:
    """The action a call names; None for built-ins and for unknown or ambiguous names."""
    if call.action in BUILTIN_ACTIONS:
        return None
    if call.system:
        system = systems.get(call.system)
        return system.actions.get(call.name) if system is not None else None
    found = [
        systems[name].actions[call.action]
        for name in dict.fromkeys((flow.source, flow.target))
        if name in systems and call.action in systems[name].actions
    ]
    return found[0] if len(found) == 1 else None


def _side(action: Action, flow: Flow) -> str:
    """Whose order `order` is in the action's context: the target's or the source's."""
    if action.system == flow.target:
        return "target"
    return "source" if action.system == flow.source else ""


# --- findings ---------------------------------------------------------------------------


def _unknown_values(
    flow: Flow, candidates: Mapping[str, Dim], resolve: Resolver
) -> tuple[list[Diagnostic], set[int]]:
    """Equality tests naming a value outside the declared domain (usually a typo)."""
    findings: list[Diagnostic] = []
    typos: set[int] = set()
    # The string literals each domain knows, as a set: most tested values are strings, and
    # scanning `known` per value was a quarter of the analysis of a large table.
    strings = {key: frozenset(k for k in dim.known if type(k) is str)
               for key, dim in candidates.items() if dim.known is not None}
    for index, rule in enumerate(flow.rules):
        for leaf in leaves(rule.when):
            found = resolve(leaf.path) if leaf.op in EQUALITY_OPS and leaf.path != "target" else None
            if found is None:
                continue
            dim = candidates.get(found[0])
            if dim is None or dim.known is None:
                continue
            values = leaf.value if leaf.op in ("in", "not_in") else (leaf.value,)
            for value in values:
                if type(value) is str and value in strings[found[0]]:
                    continue
                if value is None or any(value == k and type(value) is type(k) for k in dim.known):
                    continue
                typos.add(index)
                suggestion = did_you_mean(str(value), [str(k) for k in dim.known])
                hint = (
                    f"use one of: {', '.join(show(k) for k in dim.known)} ({dim.declared})"
                    if dim.known else f"{dim.declared} is empty: only null can match"
                )
                w = leaf.where
                findings.append(error(
                    w.file, w.line, w.column, "unknown-domain-value",
                    f"'{show(value)}' is not {dim.noun}{suggestion}", hint,
                ))
    return findings, typos


def _preconditions(
    flow: Flow,
    space: Space,
    masks: Sequence[Masks],
    calls: Sequence[Calls],
    dead: set[int],
    evaluators: Mapping[tuple[str, str], Evaluator],
) -> list[Diagnostic]:
    """Actions whose precondition fails in every case the calling rule matches.

    Once a rule's `then` has run a mutating action on a system, later actions on that system
    see a changed order, so they are not checked (a create followed by an update is fine).
    """
    findings: list[Diagnostic] = []
    for index, rule in enumerate(flow.rules):
        may = masks[index][1]
        if index in dead or not may:
            continue
        touched: set[str] = set()
        for call, action in calls[index]:
            if action is None or action.system in touched:
                continue
            side = _side(action, flow)
            if side and action.precondition is not None:
                evaluator = evaluators[(action.system, side)]
                _, allowed = evaluator.masks(action.precondition)
                if not may & allowed:
                    keys = evaluator.keys(leaves(action.precondition))
                    matched = space.describe(may, keys=keys, exact=False) or "cases where it fails"
                    requires = describe(action.precondition).removeprefix("(").removesuffix(")")
                    w = call.where
                    findings.append(warning(
                        w.file, w.line, w.column, "precondition-never-holds",
                        f"action '{action.qualified}' never runs where rule '{rule.id}' fires: "
                        f"its precondition requires {requires} but the rule matches only {matched}",
                        "drop the action from this rule, or match states where it can run",
                    ))
            if action.mutating:
                touched.add(action.system)
    return findings
