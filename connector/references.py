"""Stage 2c, validate references and templates: every name a file uses must exist.

Unknown systems, actions, arguments, settings and order paths are reported with the nearest
existing name; Jinja templates and JMESPath expressions are parsed and the variables they read
checked against what their context will hold, so a typo fails in CI, not at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector import conditions, templates
from connector.build import listings_at
from connector.diagnostics import Diagnostic, did_you_mean, error, warning
from connector.load import Loaded, PathKey, walk
from connector.model import (
    BUILTIN_ACTIONS,
    CANONICAL_FIELDS,
    CANONICAL_SUBFIELDS,
    ITEM_FIELDS,
    Condition,
    Flow,
    System,
)
from connector.normalise import bare_nulls, syntax_error
from connector.project import Config

BUILTIN_PARAMS = {"report": ("message", "level"), "watch": ("hours",)}
RULE_NAMES = (*CANONICAL_FIELDS, "order", "source", "target", "settings", "systems", "outputs", "now")
STEP_NAMES = ("order", "source", "target", "args", "settings", "steps", "outputs", "now")
REQUEST_FIELDS = ("path", "query", "headers", "json", "form", "content")


class _Checker:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.findings: list[Diagnostic] = []

    def add(self, doc: Loaded, path: PathKey, code: str, message: str, hint: str = "",
            key: bool = False, severity: str = "error") -> None:
        line, col = doc.position(path, key=key)
        make = error if severity == "error" else warning
        self.findings.append(make(doc.file, line, col, code, message, hint))

    # --- paths -------------------------------------------------------------------------

    def order_path(self, system: System | None, parts: list[str]) -> str | None:
        """Why a canonical-order path is unknown, or None when it is fine."""
        if not parts:
            return None
        head = parts[0]
        if head not in CANONICAL_FIELDS:
            return f"'{head}' is not a field of the canonical order{did_you_mean(head, CANONICAL_FIELDS)}"
        if len(parts) == 1 or head == "raw":
            return None
        sub = parts[1]
        if head == "attributes" and system is not None:
            if sub not in system.normalise.attributes:
                names = list(system.normalise.attributes)
                return (f"'{sub}' is not an attribute of {system.name} orders{did_you_mean(sub, names)}"
                        f" (declared: {', '.join(names) or 'none'})")
        elif head in CANONICAL_SUBFIELDS and sub not in CANONICAL_SUBFIELDS[head]:
            return f"'{sub}' is not a field of {head}{did_you_mean(sub, CANONICAL_SUBFIELDS[head])}"
        elif head == "items" and len(parts) >= 3 and parts[2] not in ITEM_FIELDS:
            return f"'{parts[2]}' is not an item field{did_you_mean(parts[2], ITEM_FIELDS)}"
        return None

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

    # --- rule files ----------------------------------------------------------------------

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

    def condition(self, doc: Loaded, path: PathKey, cond: Condition, check_path: Any,
                  names: Iterable[str]) -> None:
        for leaf in conditions.leaves(cond):
            line, col = leaf.where.line, leaf.where.column
            if leaf.op == "expr":
                problem = templates.check_expression(str(leaf.value))
                if problem:
                    self.findings.append(error(doc.file, line, col, "template-syntax",
                                               f"expression {leaf.value!r}: {problem}"))
                continue
            if leaf.op == "true":
                continue
            problem = check_path(leaf.path)
            if problem:
                self.findings.append(error(doc.file, line, col, "unknown-path", problem))

    def template(self, doc: Loaded, path: PathKey, source: str, names: Iterable[str],
                 check_path: Any, kind: str = "text") -> None:
        problem = templates.check_syntax(source, kind)
        if problem:
            self.add(doc, path, "template-syntax", f"template syntax error, {problem}")
            return
        for line, limit in templates.check_limits(source):
            where = f"line {line} of the template: " if "\n" in source.strip() else ""
            self.add(doc, path, "template-limit", f"template goes over a render limit: {where}{limit}",
                     "renders are bounded (docs/format.md, \"Template limits\"): build smaller values")
        allowed = {*names, "request_id"}  # request_id: every request has one
        for var in sorted(templates.variables(source)):
            if var not in allowed:
                self.add(doc, path, "template-unknown-variable",
                         f"template reads '{var}', which its context does not have{did_you_mean(var, allowed)}",
                         f"available here: {', '.join(sorted(allowed))}")
        for ref in sorted(templates.dotted_references(source)):
            if "." in ref and ref.split(".")[0] in allowed:
                why = check_path(ref)
                if why:
                    self.add(doc, path, "unknown-path", why)

    # --- mapping files ---------------------------------------------------------------------

    def mapping(self, system: System, doc: Loaded) -> None:
        data = doc.data

        def setting_path(ref: str) -> str | None:
            parts = ref.split(".")
            if parts[0] == "settings" and len(parts) > 1 and parts[1] not in system.settings:
                return f"'{parts[1]}' is not a setting of {system.name}{did_you_mean(parts[1], system.settings)}"
            return None

        def strings(base: PathKey, names: Iterable[str], kind_for: Any = None, check: Any = setting_path) -> None:
            node = data
            for p in base:
                node = node[p]
            for sub, value in walk(node, base):
                if isinstance(value, str):
                    self.template(doc, sub, value, names, check,
                                  kind=kind_for(sub) if kind_for else "text")

        def request_kind(p: PathKey) -> str:
            return "path" if "path" in p else "xml" if "content" in p else "text"

        conn = data["connection"]
        strings(("connection", "base_url"), ("settings",))
        if "rate_limits_account" in conn:
            strings(("connection", "rate_limits_account"), ("settings",))
        for key in ("headers",):
            if key in conn:
                strings(("connection", key), ("settings", "token"))
        auth = conn.get("auth") or {}
        if "headers" in auth:
            strings(("connection", "auth", "headers"), ("settings", "token"))
        if "token_request" in auth:
            strings(("connection", "auth", "token_request"), ("settings",), request_kind)
        orders = data.get("orders") or {}
        for at, listing in listings_at(orders):
            strings(at + ("request",), ("settings", "window"), request_kind)
            for key, expr in listing["pagination"].items():
                if key in ("items", "next_token", "total_pages", "next_query", "total"):
                    self.jmespath(doc, at + ("pagination", key), expr)
            self.listing(doc, listing, at)
        if "get" in orders:
            strings(("orders", "get", "request"), ("settings", "id"), request_kind)
            self.jmespath(doc, ("orders", "get", "found"), orders["get"]["found"])
        for other, spec in (orders.get("lookup") or {}).items():
            strings(("orders", "lookup", other, "request"), ("settings", "order"), request_kind)
            self.jmespath(doc, ("orders", "lookup", other, "found"), spec["found"])
        notes = data.get("notifications") or {}
        if notes:
            strings(("notifications", "queue_url"), ("settings",))
            for key in ("order_id", "partition", "accept"):
                if key in notes:
                    self.jmespath(doc, ("notifications", key), notes[key])
            if "get" not in orders:
                self.add(doc, ("notifications",), "notifications-without-get",
                         "notifications need orders.get: each notified order is read again "
                         "by its id", key=True)
        for sub, value in walk(data["normalise"], ("normalise",)):
            if isinstance(value, str) and (len(sub) == 2 or sub[-1] == "path" or sub[1] in ("attributes",) and len(sub) == 3
                                           or (sub[1] == "items" and len(sub) == 4)):
                self.jmespath(doc, sub, value)
        for name, action in system.actions.items():
            self.action(system, name, action, doc, strings, request_kind)

    def listing(self, doc: Loaded, listing: Mapping[str, Any], at: PathKey = ("orders", "list")) -> None:
        """A pagination or fan-out declaration the fetch stage could not follow."""
        pagination = listing["pagination"]
        kinds = [k for k in ("next_token", "next_query", "page_param", "offset_param") if k in pagination]
        if len(kinds) > 1:
            self.add(doc, at + ("pagination",), "pagination-incomplete",
                     f"pagination declares {' and '.join(kinds)}: one kind per listing",
                     "next_token + token_param, next_query, page_param (+ total_pages), or "
                     "offset_param (+ total)", key=True)
        if "next_token" in pagination and "token_param" not in pagination:
            self.add(doc, at + ("pagination", "next_token"), "pagination-incomplete",
                     "next_token without token_param: the token is read but never sent back",
                     "token_param: the query parameter that carries the token", key=True)
        fan_out = listing.get("fan_out")
        if fan_out is not None and fan_out not in (listing["request"].get("query") or {}):
            self.add(doc, at + ("fan_out",), "unknown-fan-out",
                     f"fan_out names {fan_out!r}, which is not a query parameter of the "
                     "listing request", "declare it under request.query (a list template)")

    def action(self, system: System, name: str, action: Any, doc: Loaded, strings: Any, request_kind: Any) -> None:
        base: PathKey = ("actions", name)
        earlier: dict[str, set[str]] = {}

        def step_path(ref: str) -> str | None:
            parts = ref.split(".")
            head = parts[0]
            if head == "args" and len(parts) > 1 and parts[1] not in action.params:
                return f"action '{name}' has no parameter '{parts[1]}'{did_you_mean(parts[1], action.params)}"
            if head == "settings" and len(parts) > 1 and parts[1] not in system.settings:
                return f"'{parts[1]}' is not a setting of {system.name}{did_you_mean(parts[1], system.settings)}"
            if head == "steps" and len(parts) > 1:
                if parts[1] not in earlier:
                    return (f"no earlier step '{parts[1]}' in action '{name}'"
                            f"{did_you_mean(parts[1], earlier)}")
                if len(parts) > 2 and parts[2] not in earlier[parts[1]]:
                    return (f"step '{parts[1]}' has no output '{parts[2]}'"
                            f"{did_you_mean(parts[2], earlier[parts[1]])}")
            if head in ("order", "source", "target") and len(parts) > 1:
                return self.order_path(None, parts[1:])
            return None

        names = (*STEP_NAMES, "batch") if action.batch is not None and action.batch.declared \
            else STEP_NAMES
        if action.precondition is not None:
            self.condition(doc, base + ("precondition",), action.precondition, step_path, STEP_NAMES)
        for i, step in enumerate(action.steps):
            spath = base + ("steps", i)
            if step.when is not None:
                self.condition(doc, spath + ("when",), step.when, step_path, STEP_NAMES)
            for key in REQUEST_FIELDS:
                if key in doc.data["actions"][name]["steps"][i]:
                    strings(spath + (key,), names, request_kind, step_path)
            if step.request.url_from:
                self.jmespath(doc, spath + ("url_from",), step.request.url_from)
                head = step.request.url_from.split(".")
                if head[0] != "steps" or len(head) < 2 or head[1] not in earlier:
                    self.add(doc, spath + ("url_from",), "unknown-path",
                             f"url_from must name an earlier step's output (steps.<step>.<output>), "
                             f"not {step.request.url_from!r}")
            for out, expr in step.outputs.items():
                self.jmespath(doc, spath + ("outputs", out), expr)
            if step.fail_if:
                self.jmespath(doc, spath + ("fail_if",), step.fail_if)
            if step.fail_message:
                self.jmespath(doc, spath + ("fail_message",), step.fail_message)
            if step.response is not None and step.response.compression_from:
                where = spath + ("response", "compression_from")
                self.jmespath(doc, where, step.response.compression_from)
                problem = step_path(step.response.compression_from)
                if problem:
                    self.add(doc, where, "unknown-path", problem)
            if step.poll is not None:
                self.jmespath(doc, spath + ("poll", "until"), step.poll.until)
                if step.poll.fail_if:
                    self.jmespath(doc, spath + ("poll", "fail_if"), step.poll.fail_if)
            earlier[step.name] = set(step.outputs)
        if action.batch is not None and action.batch.declared:
            self.batch(doc, base + ("batch",), action.batch, [s.name for s in action.steps],
                       lambda key: strings(base + ("batch", *key), names, request_kind, step_path))

    def batch(self, doc: Loaded, path: PathKey, batch: Any, steps: list[str], strings: Any) -> None:
        """A batch's effect names a step, its templates read what a batch has, its JMESPaths parse."""
        data = doc.data
        for p in path:
            data = data[p]
        if batch.effect and batch.effect not in steps:
            self.add(doc, path + ("effect",), "unknown-path",
                     f"effect names no step of the action{did_you_mean(batch.effect, steps)}",
                     f"steps: {', '.join(steps)}")
        if batch.group_by:
            strings(("group_by",))
        if batch.errors is not None:
            self.jmespath(doc, path + ("errors", "from"), batch.errors.source)
        if batch.recover is not None:
            for key in REQUEST_FIELDS:
                if key in data["recover"]:
                    strings(("recover", key))
            if batch.recover.poll is not None:
                self.jmespath(doc, path + ("recover", "poll", "until"), batch.recover.poll.until)
            if batch.recover_pages is not None:
                self.jmespath(doc, path + ("recover", "pages", "next_token"),
                              batch.recover_pages.next_token)

    def jmespath(self, doc: Loaded, path: PathKey, expression: str) -> None:
        self.findings += jmespath_findings(doc, path, expression)


def jmespath_findings(doc: Loaded, path: PathKey, expression: str) -> list[Diagnostic]:
    """A JMESPath that does not parse, or reads a bare `null` (a field of that name, not the
    literal); every check of a mapping's JMESPaths words them so."""
    line, col = doc.position(path)
    found = []
    problem = syntax_error(expression)
    if problem:
        found.append(error(doc.file, line, col, "jmespath-syntax", f"JMESPath {expression!r}: {problem}",
                           "see https://jmespath.org/specification.html"))
    nulls = bare_nulls(expression)
    if nulls:
        near = "; ".join(("..." if n > 24 else "") + expression[max(0, n - 24):n + 4]
                         for n in nulls)
        found.append(error(
            doc.file, line, col, "jmespath-bare-null",
            f"bare 'null' in a JMESPath expression ('{near}') is a field named null, "
            "not the null literal",
            "write `null` (in backquotes) for the literal, \"null\" for a field of that name"))
    return found


def check(config: Config) -> list[Diagnostic]:
    """Reference and template findings for every loaded mapping and rule file."""
    checker = _Checker(config)
    for system in config.systems.values():
        doc = config.docs.get(system.where.file)
        if doc is not None:
            checker.mapping(system, doc[1])
    for flow in config.flows.values():
        doc = config.docs.get(flow.where.file)
        if doc is not None:
            checker.flow(flow, doc[1])
    return checker.findings
