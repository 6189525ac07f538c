"""Stage 2c, validate a mapping's protocol declarations: what the engine used to know per
vendor and now reads from the mapping or flow (error-message JMESPaths, `partition_by`).

Kept apart from `references` (names a file uses must exist) because these checks are about
whether the engine can follow a declaration at run time: an error-message JMESPath that calls
a function nobody defines would only fail, silently, the day the server answers an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jmespath.exceptions
from jmespath import functions

from connector import templates
from connector.diagnostics import Diagnostic, did_you_mean, error, warning
from connector.transport.error_bodies import EXTRA_FUNCTIONS
from connector.load import Loaded, PathKey, walk
from connector.normalise import compile_path
from connector.model import System
from connector.project import Config
from connector.references import jmespath_findings

_BUILTIN_FUNCTIONS = frozenset(name[len("_func_"):] for name in dir(functions.Functions)
                               if name.startswith("_func_"))


def _functions(node: Any) -> Iterator[str]:
    """The function names a compiled JMESPath's AST calls."""
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            yield str(node.get("value"))
        for child in node.get("children", ()):
            yield from _functions(child)
    elif isinstance(node, list):
        for child in node:
            yield from _functions(child)


class _Checker:
    def __init__(self) -> None:
        self.findings: list[Diagnostic] = []

    def add(self, doc: Loaded, path: PathKey, code: str, message: str, hint: str) -> None:
        line, col = doc.position(path)
        self.findings.append(error(doc.file, line, col, code, message, hint))

    def error_messages(self, doc: Loaded) -> None:
        """`connection.error_message`: each JMESPath parses, has no bare null, and calls only
        functions that exist (JMESPath's and `placeholders`)."""
        declared = (doc.data.get("connection") or {}).get("error_message")
        if declared is None:
            return
        items: list[tuple[PathKey, str]] = (
            [(("connection", "error_message"), declared)] if isinstance(declared, str) else
            [(("connection", "error_message", i), str(e)) for i, e in enumerate(declared)])
        for path, expression in items:
            found = jmespath_findings(doc, path, expression)
            self.findings += found
            if any(f.code == "jmespath-syntax" for f in found):
                continue
            try:
                called = set(_functions(compile_path(expression).parsed))
            except jmespath.exceptions.JMESPathError:  # pragma: no cover - syntax_error saw it
                continue
            for name in sorted(called - _BUILTIN_FUNCTIONS - set(EXTRA_FUNCTIONS)):
                known = sorted(_BUILTIN_FUNCTIONS | set(EXTRA_FUNCTIONS))
                self.add(doc, path, "jmespath-unknown-function",
                         f"JMESPath {expression!r} calls {name}(), which is not a function"
                         f"{did_you_mean(name, known)}",
                         f"the functions are JMESPath's and {', '.join(EXTRA_FUNCTIONS)}(): "
                         f"{', '.join(known)}")

    def partition(self, doc: Loaded, setting: str, system: System, whose: str) -> None:
        """`partition_by` (a mapping's, or a flow's naming a setting of its source): a
        declared setting of the system, and a list, since each of its values is run alone
        with the setting narrowed to that one value."""
        if not setting:
            return
        declared = system.settings.get(setting)
        if declared is None:
            self.add(doc, ("partition_by",), "unknown-partition-setting",
                     f"partition_by: {setting!r} is not a setting of {system.name}"
                     f"{did_you_mean(setting, system.settings)}",
                     f"name a setting {whose} declares under settings: (type: list), whose "
                     "values are the partitions")
        elif declared.kind != "list":
            self.add(doc, ("partition_by",), "partition-setting-not-list",
                     f"partition_by: {system.name}'s setting {setting!r} is a {declared.kind}, "
                     "not a list",
                     f"declare it `type: list` in {system.name}'s mapping: each value is a "
                     "partition, run with the setting narrowed to that value")


def secret_headers_outside_auth(doc: Loaded, system: System) -> list[Diagnostic]:
    """A request header outside the connection section (a listing's, a look-up's, an
    action step's) rendered from a secret setting. Cassettes mask the auth section's secret
    headers by name (`render.secret_headers`); this one would be masked by value only, so a
    server's transformation of it (another encoding) would reach the cassette."""
    secret = {f"settings.{name}" for name, s in system.settings.items() if s.secret}
    found: list[Diagnostic] = []
    if not secret:
        return found
    for path, value in walk(doc.data):
        if not path or path[0] in ("connection", "variants") or path[-1] != "headers" \
                or not isinstance(value, dict):
            continue
        for name, template in value.items():
            used = sorted(templates.dotted_references(str(template)) & secret)
            if used:
                line, col = doc.position(path + (name,), key=True)
                found.append(warning(
                    doc.file, line, col, "secret-header-outside-auth",
                    f"header {name!r} is rendered from the secret {used[0]}, outside the "
                    "connection's auth section: cassettes would mask it by its value only",
                    "declare it under connection.auth.headers (sent on every request and "
                    "masked by name), or read it from a setting that is not secret"))
    return found


#: Where a request carries a secret: its headers (`secret-header-outside-auth` has those
#: outside the connection section) and its body; `connection.auth` holds the credentials.
_REQUEST_PARTS = frozenset({"headers", "json", "form", "content"})
#: Also the credentials' own section, and the rate-limit account, kept as a digest only.
_CREDENTIALS = frozenset({("connection", "auth"), ("connection", "rate_limits_account")})


def secrets_outside_request(doc: Loaded, system: System) -> list[Diagnostic]:
    """A template outside a request's headers, auth and body reading a secret setting (a
    path, a query, the base URL, an argument): the value would be in URLs, which logs,
    errors and `plan` show, masked by its value only; request templates refuse to
    transform a secret, so this is the one place it could be printed whole."""
    secret = {f"settings.{name}" for name, s in system.settings.items() if s.secret}
    found: list[Diagnostic] = []
    if not secret:
        return found
    for path, value in walk(doc.data):
        if not isinstance(value, str) or "{" not in value or _REQUEST_PARTS & set(map(str, path)) \
                or path[:2] in _CREDENTIALS:
            continue
        used = sorted(templates.dotted_references(value) & secret)
        if used:
            line, col = doc.position(path)
            where = ".".join(map(str, path))
            found.append(warning(
                doc.file, line, col, "secret-outside-request",
                f"{where} reads the secret {used[0]} outside a request's headers, auth and "
                "body: it would be shown wherever the URL or the value is",
                "send it in connection.auth (a header, or the token request's form), or read "
                "it from a setting that is not secret"))
    return found


def check(config: Config) -> list[Diagnostic]:
    """Declaration findings for every loaded mapping and rule file."""
    checker = _Checker()
    for system in config.systems.values():
        doc = config.docs.get(system.where.file)
        if doc is not None:
            checker.findings += secret_headers_outside_auth(doc[1], system)
            checker.findings += secrets_outside_request(doc[1], system)
            checker.error_messages(doc[1])
            checker.partition(doc[1], system.partition_by, system, "the mapping")
    for flow in config.flows.values():
        doc = config.docs.get(flow.where.file)
        source = config.systems.get(flow.source)
        if doc is not None and source is not None:
            checker.partition(doc[1], flow.partition_by, source, f"{source.name}'s mapping")
    return checker.findings
