"""Stage 2d, validate that each flow can run: its systems declare what the run will ask of them.

References (stage 2c) check that every name a file uses exists; this stage checks that what a
flow needs at run time is declared at all. A copy of a platform's mapping used as a flow's
source passed every other check, then `plan` stopped with "the mapping has no orders.list",
and after a listing was added every order failed for want of a look-up. Those are facts of the
files, so `validate` reports them, at the rule file's `source:`/`target:` and at the mapping's
`auth:`, and `plan`/`apply` refuse to start (`connector.validate.checked`).
"""

from __future__ import annotations

from connector import templates
from connector.diagnostics import Diagnostic, error, warning
from connector.load import Loaded, PathKey
from connector.model import Flow, System
from connector.project import Config

__all__ = ["check"]

#: Auth kinds whose headers are fixed templates over the settings (no token exchange).
_STATIC_HEADER_KINDS = ("headers", "bearer")


def check(config: Config) -> list[Diagnostic]:
    """Findings for flows whose source cannot be listed or whose target cannot look up the
    source's orders, and for auth declarations the client could not use."""
    findings: list[Diagnostic] = []
    for system in config.systems.values():
        doc = config.docs.get(system.where.file)
        if doc is not None:
            findings += _auth(system, doc[1])
    for flow in config.flows.values():
        doc = config.docs.get(flow.where.file)
        source, target = config.systems.get(flow.source), config.systems.get(flow.target)
        if doc is None or source is None or target is None:
            continue  # an unknown system is reported by references
        findings += _flow(flow, source, target, doc[1])
    return findings


def _at(doc: Loaded, path: PathKey, code: str, message: str, hint: str, *,
        severity: str = "error") -> Diagnostic:
    line, col = doc.position(path)
    return (error if severity == "error" else warning)(doc.file, line, col, code, message, hint)


def _flow(flow: Flow, source: System, target: System, doc: Loaded) -> list[Diagnostic]:
    found = []
    if source.listing is None:
        found.append(_at(
            doc, ("source",), "flow-source-cannot-list",
            f"{source.name} is this flow's source, but {source.where.file} declares no orders.list: "
            "the run could not fetch a single order",
            f"declare orders.list (request, pagination) in {source.where.file}, or make "
            f"{source.name} the target of the flow (docs/format.md, \"Mapping files\")"))
    if source.name not in target.lookups:
        declared = ", ".join(sorted(target.lookups)) or "none"
        found.append(_at(
            doc, ("target",), "flow-target-no-lookup",
            f"{target.where.file} declares no orders.lookup.{source.name}: every {source.name} order "
            f"would fail, as the run could not find its {target.name} counterpart "
            f"(look-ups declared: {declared})",
            f"declare orders.lookup.{source.name} (request, found) in {target.where.file}: how a "
            f"{source.name} order's {target.name} order is read (docs/format.md, \"Mapping files\")"))
    return found


#: Auth kinds kept loading under an old name, and the name to use instead.
DEPRECATED_AUTH_KINDS = {"lwa": "oauth2_refresh_token"}


def _reads_token(system: System) -> bool:
    return any("token" in templates.variables(value) for value in system.auth.headers.values())


def _auth(system: System, doc: Loaded) -> list[Diagnostic]:
    auth = system.auth
    where: PathKey = ("connection", "auth", "kind")
    if auth.kind == "none" and "auth" not in (doc.data.get("connection") or {}):
        where = ("connection",) if "connection" in doc.data else ()
    found = []
    if auth.kind in DEPRECATED_AUTH_KINDS:
        found.append(_at(
            doc, ("connection", "auth", "kind"), "deprecated-auth-kind",
            f"auth kind {auth.kind} is the old name of {DEPRECATED_AUTH_KINDS[auth.kind]} "
            "(it still loads and works the same)",
            f"use kind: {DEPRECATED_AUTH_KINDS[auth.kind]}", severity="warning"))
    if auth.exchanges_token:
        if auth.token_request is None:
            found.append(_at(
                doc, where, "auth-incomplete",
                f"auth kind {auth.kind} exchanges the settings for an access token, but declares "
                "no token_request: no request could be authenticated",
                "add token_request (method, path, form or json) and token_field "
                "(docs/format.md, \"Auth kinds\")"))
        if not _reads_token(system):
            found.append(_at(
                doc, where, "auth-incomplete",
                f"auth kind {auth.kind} fetches an access token that no header sends",
                "send it in a header, e.g. `Authorization: \"Bearer {{ token }}\"` or "
                "`x-amz-access-token: \"{{ token }}\"`"))
    else:
        if _reads_token(system):
            found.append(_at(
                doc, where, "auth-incomplete",
                f"an auth header reads {{{{ token }}}}, which only a token-exchanging kind "
                f"(oauth2_refresh_token, oauth2_client_credentials) sets; kind {auth.kind} leaves it empty",
                "use an oauth2 kind with a token_request, or build the header from settings"))
        if auth.kind in _STATIC_HEADER_KINDS and not auth.headers:
            found.append(_at(
                doc, where, "auth-incomplete",
                f"auth kind {auth.kind} declares no headers: requests would go out unauthenticated",
                "add the headers the API expects, e.g. `Authorization: \"Bearer {{ settings.token }}\"`"
                ", or say `kind: none`"))
        if auth.token_request is not None:
            found.append(_at(
                doc, where, "auth-incomplete",
                f"auth kind {auth.kind} never sends its token_request",
                "use an oauth2 kind to exchange the settings for a token, or remove token_request",
                severity="warning"))
    return found
