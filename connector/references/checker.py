"""The shared half of the reference checks: where a finding goes, and the checks that rule
files and mappings both need (canonical-order paths, conditions, templates, JMESPaths)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connector import conditions, templates
from connector.diagnostics import Diagnostic, did_you_mean, error, warning
from connector.load import Loaded, PathKey
from connector.model import CANONICAL_FIELDS, CANONICAL_SUBFIELDS, ITEM_FIELDS, Condition, System
from connector.normalise import bare_nulls, syntax_error
from connector.project import Config


class Checker:
    """Collects the findings of one project's reference checks."""

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
