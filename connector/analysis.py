"""Static analysis of one rule file over the systems' declared domains.

`validate` promises more than a schema check: it tells an integrator, with line numbers,
which rule can never fire, which combinations of the source's status × actor × fulfilment
no rule handles, which rules collide under `hit_policy: all`, and which actions a rule calls
in states where the action's precondition always skips it. DMN tools do this only inside the
JVM and skip free-text columns; here the domains are declared in the mappings, so the
analysis is exact over them (see `analysis_space` for how conditions become case sets).

Every finding errs on the side of silence: a test the analysis cannot see through (an
`expr`, an attribute, a comparison) is assumed to go whichever way avoids a false report.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from connector.analysis_space import ABSENT, Dim, Evaluator, Resolver, Space, nest, presence, show
from connector.conditions import describe, leaves
from connector.diagnostics import Diagnostic, did_you_mean, error, warning
from connector.model import BUILTIN_ACTIONS, Action, ActionCall, Flow, Rule, Setting, System

#: Above this many cases, optional dimensions (settings, flags) are dropped and become opaque.
MAX_CASES = 250_000
#: How many uncovered combinations a rule-gap finding lists before "and N more".
GAP_LIST_LIMIT = 20
SOURCE_FIELDS = ("status", "actor", "fulfilment")
EQUALITY_OPS = ("eq", "ne", "in", "not_in")

Masks = tuple[int, int]  # (must, may)
Calls = list[tuple[ActionCall, Action | None]]


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
    unreachable, dead = _unreachable(flow, masks, typos)
    findings += unreachable
    if flow.hit_policy == "all":
        findings += _conflicts(flow, space, masks, calls)
    if source is not None:
        findings += _gaps(flow, space, masks)
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
    ignores x; the gap check leaves null out (see `_gaps`).
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


def _effective_args(call: ActionCall, action: Action) -> dict[str, Any]:
    args = {name: p.default for name, p in action.params.items() if p.default is not None}
    args.update(call.args)
    return args


def _kind(name: str) -> str:
    if name.startswith("cancel"):
        return "cancel"
    return "advance" if name.startswith(("create", "confirm", "complete")) else ""


# --- findings ---------------------------------------------------------------------------


def _unknown_values(
    flow: Flow, candidates: Mapping[str, Dim], resolve: Resolver
) -> tuple[list[Diagnostic], set[int]]:
    """Equality tests naming a value outside the declared domain (usually a typo)."""
    findings: list[Diagnostic] = []
    typos: set[int] = set()
    for index, rule in enumerate(flow.rules):
        for leaf in leaves(rule.when):
            found = resolve(leaf.path) if leaf.op in EQUALITY_OPS and leaf.path != "target" else None
            dim = candidates.get(found[0]) if found is not None else None
            if dim is None or dim.known is None:
                continue
            values = leaf.value if leaf.op in ("in", "not_in") else (leaf.value,)
            for value in values:
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


def _unreachable(
    flow: Flow, masks: Sequence[Masks], typos: set[int]
) -> tuple[list[Diagnostic], set[int]]:
    """Rules whose condition matches nothing, or (under `first`) only what earlier rules take.

    An earlier rule shadows only where it surely matches (`must`), so a rule with an opaque
    test never shadows; the later rule counts everywhere it may match (`may`).
    """
    findings: list[Diagnostic] = []
    dead: set[int] = set()
    covered = 0
    reachable: list[tuple[Rule, int]] = []
    for index, (rule, (must, may)) in enumerate(zip(flow.rules, masks)):
        w = rule.where
        if index in typos:
            pass  # reported as unknown-domain-value; do not pile a second finding on it
        elif not may:
            dead.add(index)
            findings.append(warning(
                w.file, w.line, w.column, "rule-unreachable",
                f"rule '{rule.id}' can never fire: its condition matches no order",
                "two of its tests contradict each other; fix or delete the rule",
            ))
        elif flow.hit_policy == "first" and not may & ~covered:
            dead.add(index)
            names = [r.id for r in _shadowers(may, reachable)]
            quoted = ", ".join(f"'{n}'" for n in names)
            who = f"rule {quoted} already matches" if len(names) == 1 else f"rules {quoted} already match"
            findings.append(warning(
                w.file, w.line, w.column, "rule-unreachable",
                f"rule '{rule.id}' can never fire: {who} every order it matches",
                f"delete it, or move it above '{names[0]}' if it should win (hit_policy: first)",
            ))
        if index not in dead:
            reachable.append((rule, must))
        covered |= must
    return findings, dead


def _shadowers(may: int, earlier: Sequence[tuple[Rule, int]]) -> list[Rule]:
    """A small set of earlier rules that together cover `may` (first in order, then pruned)."""
    chosen: list[tuple[Rule, int]] = []
    remaining = may
    for rule, must in earlier:
        if must & remaining:
            chosen.append((rule, must))
            remaining &= ~must
            if not remaining:
                break
    for item in list(reversed(chosen)):
        rest = 0
        for other in chosen:
            if other is not item:
                rest |= other[1]
        if not may & ~rest:
            chosen.remove(item)
    return [rule for rule, _ in chosen]


def _overlap(a: Masks, b: Masks) -> int:
    """Cases where both rules can match one order.

    When one rule is entirely finite (must == may), any order the other matches in a case of
    the finite rule matches both; when both depend on opaque tests, only their sure cases count.
    """
    if a[0] == a[1] or b[0] == b[1]:
        return a[1] & b[1]
    return a[0] & b[0]


Signature = tuple[str, str, str, str]  # qualified name, system, kind, arguments as JSON


def _signatures(calls: Calls) -> list[Signature]:
    """What conflict detection compares, computed once per rule."""
    return [
        (a.qualified, a.system, _kind(a.name), json.dumps(_effective_args(c, a), sort_keys=True, default=str))
        for c, a in calls
        if a is not None
    ]


def _clash(first: Rule, a: Sequence[Signature], second: Rule, b: Sequence[Signature]) -> str:
    """Why two rules' actions conflict, or ''."""
    for qa, system_a, kind_a, args_a in a:
        for qb, system_b, kind_b, args_b in b:
            if qa == qb and args_a != args_b:
                return f"'{first.id}' calls {qa} with {args_a}, '{second.id}' with {args_b}"
            if system_a == system_b and {kind_a, kind_b} == {"cancel", "advance"}:
                return f"'{first.id}' calls {qa} but '{second.id}' calls {qb}"
    return ""


def _conflicts(
    flow: Flow, space: Space, masks: Sequence[Masks], calls: Sequence[Calls]
) -> list[Diagnostic]:
    """Under `all`, pairs of rules that can fire together and call clashing actions.

    One finding per later rule, naming the first earlier rule it clashes with and counting
    the others, so that a large file cannot produce a quadratic flood.
    """
    findings: list[Diagnostic] = []
    by_action: dict[str, list[int]] = {}
    by_kind: dict[tuple[str, str], list[int]] = {}
    signatures = [_signatures(c) for c in calls]
    for j, rule in enumerate(flow.rules):
        candidates: set[int] = set()
        for qualified, system, kind, _ in signatures[j]:
            candidates.update(by_action.get(qualified, ()))
            if kind:
                other = "advance" if kind == "cancel" else "cancel"
                candidates.update(by_kind.get((system, other), ()))
        clashes: list[tuple[int, str, int]] = []
        for i in sorted(candidates):
            both = _overlap(masks[i], masks[j])
            reason = _clash(flow.rules[i], signatures[i], rule, signatures[j]) if both else ""
            if reason:
                clashes.append((i, reason, both))
        if clashes:
            i, reason, both = clashes[0]
            case = space.describe(both) or "any order"
            message = (
                f"rules '{flow.rules[i].id}' and '{rule.id}' can both match one order "
                f"({case}) and their actions conflict: {reason}"
            )
            if len(clashes) > 1:
                more = ", ".join(f"'{flow.rules[k].id}'" for k, _, _ in clashes[1:4])
                extra = f" and {len(clashes) - 4} more" if len(clashes) > 4 else ""
                message += f"; '{rule.id}' also conflicts with {more}{extra}"
            w = rule.where
            findings.append(warning(
                w.file, w.line, w.column, "rule-conflict", message,
                "make the conditions exclusive, or use hit_policy: first and order the rules",
            ))
        for qualified, system, kind, _ in signatures[j]:
            by_action.setdefault(qualified, []).append(j)
            if kind:
                by_kind.setdefault((system, kind), []).append(j)
    return findings


def _gaps(flow: Flow, space: Space, masks: Sequence[Masks]) -> list[Diagnostic]:
    """One finding listing the status × actor × fulfilment combinations no rule handles.

    A rule counts wherever it *may* match (an opaque test is assumed to hold), so only
    certain gaps are listed. Flags tested as true/false are assumed not to be null here.
    """
    gap_keys = [k for k in SOURCE_FIELDS if k in space.index]
    considered = space.full
    for dim in space.dims:
        if dim.known is None:  # a true/false flag
            considered &= ~space.mask(dim.key, [None])
    covered = 0
    for _, may in masks:
        covered |= may
    uncovered = considered & ~covered
    if not uncovered or not gap_keys:
        return []
    dims = [space.index[k] for k in gap_keys]
    others = [d.key for d in space.dims if d.key not in gap_keys]
    entries: dict[tuple[Any, ...], str] = {}
    for combo in itertools.product(*(range(len(d.values)) for d in dims)):
        slice_mask = considered
        for dim, k in zip(dims, combo):
            slice_mask &= space.value_masks[dim.key][k]
        if uncovered & slice_mask:
            qualifier = space.describe(uncovered & slice_mask, keys=others, within=slice_mask, exact=True)
            entries[tuple(d.values[k] for d, k in zip(dims, combo))] = qualifier
    listed = []
    for prefix, qualifier in _compress(entries, dims):
        words = " ".join(space.describe_values(d.key, [v]) for d, v in zip(dims, prefix)) or "any order"
        listed.append(words + (f" ({qualifier})" if qualifier else ""))
    text = "; ".join(listed[:GAP_LIST_LIMIT])
    if len(listed) > GAP_LIST_LIMIT:
        text += f"; and {len(listed) - GAP_LIST_LIMIT} more"
    file, line = flow.where.file, flow.where.line
    if flow.rules and flow.rules[0].where.line > 1:
        line = flow.rules[0].where.line - 1  # the `rules:` key sits just above the first rule
    return [warning(
        file, line, 1, "rule-gap", f"no rule handles: {text}",
        "add rules for these cases, or a rule with `then: []` to ignore them deliberately",
    )]


def _compress(entries: Mapping[tuple[Any, ...], str], dims: Sequence[Dim]) -> list[tuple[tuple[Any, ...], str]]:
    """Merge uncovered combinations: 'status=X' when every actor and fulfilment of X is one."""
    out: list[tuple[tuple[Any, ...], str]] = []

    def walk(prefix: tuple[Any, ...]) -> None:
        depth = len(prefix)
        below = [t for t in entries if t[:depth] == prefix]
        if not below:
            return
        qualifiers = {entries[t] for t in below}
        total = 1
        for dim in dims[depth:]:
            total *= len(dim.values)
        if depth == len(dims) or (len(below) == total and len(qualifiers) == 1):
            out.append((prefix, entries[below[0]]))
            return
        for value in dims[depth].values:
            walk(prefix + (value,))

    walk(())
    return out


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
