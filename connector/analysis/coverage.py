"""Rule-against-rule findings: unreachable rules, conflicting rules and coverage gaps.

Split from `analysis.flow` because these three compare rules with one another over the case
space (`analysis.space`), while the rest of the analysis looks at one rule or call at a time.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from connector.analysis.space import Dim, Space
from connector.diagnostics import Diagnostic, warning
from connector.model import Action, ActionCall, Flow, Rule

#: How many uncovered combinations a rule-gap finding lists before "and N more".
GAP_LIST_LIMIT = 20
SOURCE_FIELDS = ("status", "actor", "fulfilment")

Masks = tuple[int, int]  # (must, may) of one rule's condition
Calls = list[tuple[ActionCall, Action | None]]  # a rule's `then`, each call with its action


def _effective_args(call: ActionCall, action: Action) -> dict[str, Any]:
    args = {name: p.default for name, p in action.params.items() if p.default is not None}
    args.update(call.args)
    return args


def _kind(action: Action) -> str:
    """The action's declared kind (`kind:`); else guessed from its name (older mappings)."""
    if action.kind:
        return {"cancel": "cancel", "advance": "advance", "create": "advance"}.get(action.kind, "")
    name = action.name
    if name.startswith("cancel"):
        return "cancel"
    return "advance" if name.startswith(("create", "confirm", "complete")) else ""


def unreachable(
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
    # Pruned from the last: a rule goes when the others still chosen cover `may` without it.
    # The others are those before it (not pruned yet) and those kept after it, so prefix
    # unions make this linear (it was quadratic: a large table has many shadowed rules).
    before = [0]
    for _, must in chosen:
        before.append(before[-1] | must)
    kept: list[Rule] = []
    after = 0
    for i in range(len(chosen) - 1, -1, -1):
        rule, must = chosen[i]
        if may & ~(before[i] | after):
            kept.append(rule)
            after |= must
    return kept[::-1]


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
        (a.qualified, a.system, _kind(a), json.dumps(_effective_args(c, a), sort_keys=True, default=str))
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


def conflicts(
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


def gaps(flow: Flow, space: Space, masks: Sequence[Masks]) -> list[Diagnostic]:
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
