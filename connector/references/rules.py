"""References in rule files: the systems, actions, arguments, settings, outputs and order
paths a flow's rules and tests name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector.diagnostics import did_you_mean
from connector.load import Loaded, PathKey
from connector.model import BUILTIN_ACTIONS, CANONICAL_FIELDS, Flow
from connector.references.checker import Checker

BUILTIN_PARAMS = {"report": ("message", "level"), "watch": ("hours",)}
RULE_NAMES = (*CANONICAL_FIELDS, "order", "source", "target", "settings", "systems", "outputs", "now")


class RuleChecker(Checker):
    """The checks of one rule file (a flow)."""

    def rule_path(self, flow: Flow, path: str) -> str | None:
        parts = path.split(".")
        head = parts[0]
        source = self.config.systems.get(flow.source)
        if head in ("order", "source"):
            return self.order_path(source, parts[1:])
        if head == "target":
            return self.order_path(self.config.systems.get(flow.target), parts[1:])
        if head == "settings":
            if len(parts) > 1 and parts[1] not in flow.settings:
                return (f"flow setting '{parts[1]}' is not declared{did_you_mean(parts[1], flow.settings)}"
                        " (declare it under settings: in the rule file)")
            return None
        if head == "systems":
            return self._system_setting(parts[1:], (flow.source, flow.target))
        if head == "outputs":
            return self._output(flow, parts[1:])
        if head == "now":
            return None
        return self.order_path(source, parts)

    def _system_setting(self, parts: list[str], allowed: Iterable[str]) -> str | None:
        if not parts:
            return None
        system = self.config.systems.get(parts[0])
        if system is None or parts[0] not in allowed:
            return f"'{parts[0]}' is not a system of this flow{did_you_mean(parts[0], list(allowed))}"
        if len(parts) > 1:
            setting = system.settings.get(parts[1])
            if setting is None:
                return f"'{parts[1]}' is not a setting of {system.name}{did_you_mean(parts[1], system.settings)}"
            if setting.secret:
                return f"'{parts[1]}' is a secret setting of {system.name}: rules cannot read it"
        return None

    def _output(self, flow: Flow, parts: list[str]) -> str | None:
        if not parts:
            return None
        actions = {name: a for s in (flow.source, flow.target) if s in self.config.systems
                   for name, a in self.config.systems[s].actions.items()}
        action = actions.get(parts[0])
        if action is None:
            return f"no action '{parts[0]}' records outputs{did_you_mean(parts[0], actions)}"
        names = {o for step in action.steps for o in step.outputs}
        if len(parts) > 1 and parts[1] not in names:
            return (f"action '{parts[0]}' has no output '{parts[1]}'{did_you_mean(parts[1], names)}"
                    f" (outputs: {', '.join(sorted(names)) or 'none'})")
        return None

    def flow(self, flow: Flow, doc: Loaded) -> None:
        systems = self.config.systems
        for role in ("source", "target"):
            name = getattr(flow, role)
            if name not in systems:
                self.add(doc, (role,), "unknown-system", f"unknown system '{name}'{did_you_mean(name, systems)}",
                         f"add mappings/{name}.yaml or fix the name")
        seen: dict[str, int] = {}
        for i, rule in enumerate(flow.rules):
            if rule.id in seen:
                first_line = doc.position(("rules", seen[rule.id]))[0]
                self.add(doc, ("rules", i, "id"), "duplicate-rule-id",
                         f"rule id '{rule.id}' is already used by the rule at line {first_line}",
                         "rule ids name rules in test cases, plans and logs: rename one")
            seen.setdefault(rule.id, i)
            self.condition(doc, ("rules", i, "when"), rule.when, lambda p: self.rule_path(flow, p), RULE_NAMES)
            for j, call in enumerate(rule.then):
                self.call(flow, doc, ("rules", i, "then", j), call.action, call.args, check_args=True)
        for i, case in enumerate(flow.tests):
            for j, call in enumerate(case.expect):
                self.call(flow, doc, ("tests", i, "expect", j), call.action, call.args, check_args=False)
            for k, rid in enumerate(case.expect_rules or ()):
                if rid not in seen:
                    self.add(doc, ("tests", i, "rules", k), "unknown-rule",
                             f"no rule '{rid}' in this file{did_you_mean(rid, seen)}")
            for key in case.settings:
                if key not in flow.settings:
                    self.add(doc, ("tests", i, "settings", key), "unknown-setting",
                             f"unknown flow setting '{key}'{did_you_mean(key, flow.settings)}", key=True)

    def call(self, flow: Flow, doc: Loaded, path: PathKey, name: str, args: Mapping[str, Any],
             check_args: bool) -> None:
        systems = self.config.systems
        item = doc.data
        for p in path:
            item = item[p]
        cpath = path + (name,) if isinstance(item, dict) else path
        if name in BUILTIN_ACTIONS:
            params: Iterable[str] = BUILTIN_PARAMS[name]
            required: list[str] = []
        else:
            known = {f"{s}.{a}": systems[s].actions[a] for s in (flow.source, flow.target)
                     if s in systems for a in systems[s].actions}
            bare = [q.split(".", 1)[1] for q in known]
            if "." in name:
                action = known.get(name)
            else:
                owners = [q for q in known if q.split(".", 1)[1] == name]
                if len(owners) > 1:
                    self.add(doc, cpath, "ambiguous-action",
                             f"action '{name}' exists in both {flow.source} and {flow.target}",
                             f"write {owners[0]} or {owners[1]}", key=isinstance(item, dict))
                    return
                action = known[owners[0]] if owners else None
            if action is None:
                if flow.source not in systems or flow.target not in systems:
                    return  # the unknown system is already reported
                suggestion = did_you_mean(name, [*known, *bare, *BUILTIN_ACTIONS])
                self.add(doc, cpath, "unknown-action", f"unknown action '{name}'{suggestion}",
                         f"actions of {flow.source} and {flow.target}: {', '.join(sorted(known))}",
                         key=isinstance(item, dict))
                return
            params = action.params
            required = [p for p, spec in action.params.items() if spec.required and spec.default is None]
        if not check_args:
            return
        for arg, value in args.items():
            if arg not in params:
                self.add(doc, cpath + (arg,), "unknown-argument",
                         f"action '{name}' has no parameter '{arg}'{did_you_mean(arg, params)}",
                         f"parameters: {', '.join(params) or 'none'}", key=True)
            elif isinstance(value, str):
                self.template(doc, cpath + (arg,), value, RULE_NAMES, lambda p: self.rule_path(flow, p))
        for arg in required:
            if arg not in args:
                self.add(doc, cpath, "missing-argument", f"action '{name}' needs argument '{arg}'",
                         key=isinstance(item, dict))
