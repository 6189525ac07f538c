"""Rendering a mapping's request templates into concrete HTTP requests (part of plan).

The host comes from the system's `base_url` (rendered from settings only). Order data can
reach the path only through the path environment, which percent-encodes each interpolation
as a single segment, and the final URL is checked to still be on the base URL's host.
Secrets are masked by `Redactor` wherever a request is shown.
"""

from __future__ import annotations

import dataclasses

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from connector import templates
from connector.errors import TemplateError
from connector.model import Request, Setting, System
from connector.normalise import search

MASK = "****"


@dataclass(frozen=True)
class RenderedRequest:
    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    has_json: bool = False
    form: tuple[tuple[str, str], ...] = ()
    content: str | None = None
    operation: str = ""
    system: str = ""

    def body_bytes(self) -> bytes | None:
        if self.has_json:
            return json.dumps(self.json, ensure_ascii=False).encode()
        if self.content is not None:
            return self.content.encode()
        return None


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values in any text shown to a person or written to disk.

    `headers` are the names (lower case) of the request headers that carry credentials, as
    the mappings' auth sections say (`secret_headers`): a cassette masks those by name,
    whatever their value, so that a token issued during the run never reaches the file even
    before it is known as a value."""

    secrets: tuple[str, ...] = field(default=())
    headers: tuple[str, ...] = field(default=())
    # Query parameters whose values a cassette masks by name (the mappings'
    # `secret_query_params`: presigned URLs' signatures).
    query_params: tuple[str, ...] = field(default=())

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, MASK)
        return text

    def extended(self, more: Iterable[str]) -> Redactor:
        """Also mask `more`, each in every spelling a remote system may echo it back in
        (raw, percent- or form-encoded as in a query or form body, JSON-escaped)."""
        added = {form for m in more if m and len(m) >= 4 for form in _spellings(m)}
        return dataclasses.replace(
            self, secrets=tuple(sorted({*self.secrets, *added}, key=len, reverse=True)))

    def with_headers(self, names: Iterable[str]) -> Redactor:
        """Also mask the headers `names` by name (case-insensitive)."""
        return dataclasses.replace(
            self, headers=tuple(sorted({*self.headers, *(n.lower() for n in names)})))

    def with_query_params(self, names: Iterable[str]) -> Redactor:
        """Also mask the values of the query parameters `names` by name (in a cassette)."""
        return dataclasses.replace(self, query_params=tuple(sorted({*self.query_params, *names})))


def _spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def secret_values(declared: Mapping[str, Setting], values: Mapping[str, Any]) -> list[str]:
    return [str(values[n]) for n, s in declared.items() if s.secret and values.get(n)]


def secret_headers(system: System) -> tuple[str, ...]:
    """The headers (lower case) of a system's auth section and token request whose values
    are rendered from a secret: the access token (`{{ token }}`) or a secret setting (an
    app key, HTTP Basic of a client secret). Derived, so that a new system's credentials
    are masked by name without a list of vendors' header names anywhere."""
    secret = {f"settings.{name}" for name, s in system.settings.items() if s.secret}
    declared = list(system.auth.headers.items())
    if system.auth.token_request is not None:
        declared += system.auth.token_request.headers.items()
    return tuple(sorted({name.lower() for name, template in declared
                         if (refs := templates.dotted_references(template))
                         and ("token" in refs or refs & secret)}))


def base_url(system: System, settings: Mapping[str, Any]) -> str:
    url = templates.render(system.base_url, {"settings": settings}).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TemplateError(
            f"{system.name}: base URL {url!r} is not an http(s) URL; "
            f"set CONNECTOR_{system.name.upper().replace('-', '_')}_BASE_URL"
        )
    return url


def _header_value(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise TemplateError(f"header {name!r}: rendered value contains a line break (refused)")
    return value


def _query(query: Mapping[str, Any], context: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    params: list[tuple[str, str]] = []
    for name, template in query.items():
        value = templates.render_value(template, context)
        if value is None or value == "":
            continue  # an empty optional parameter is left out, not sent empty
        if isinstance(value, (list, tuple)):
            params.extend((name, _scalar(v)) for v in value)
        else:
            params.append((name, _scalar(value)))
    return tuple(params)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_request(
    system: System,
    request: Request,
    context: Mapping[str, Any],
    settings: Mapping[str, Any],
    extra_headers: Mapping[str, str] | None = None,
) -> RenderedRequest:
    """A request with every template rendered and every value escaped for its position."""
    # request_id: a new UUID per request (Walmart's WM_QOS.CORRELATION_ID).
    import uuid  # here: only requests need it, and `validate` starts faster without it

    # Secret settings are opaque to the request's templates: output as they are, never
    # transformed into a spelling the redactor would not mask (templates.secrets).
    secret = [name for name, declared in system.settings.items() if declared.secret]
    full = {"request_id": str(uuid.uuid4()), **context,
            "settings": templates.opaque(settings, secret) if secret else settings}
    if request.url_from:
        url = search(request.url_from, full)
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise TemplateError(f"url_from {request.url_from!r} did not give an http(s) URL")
    else:
        base = base_url(system, settings)
        path = templates.render(request.path, full, kind="path")
        if not path.startswith("/"):
            path = "/" + path
        url = base + path
        if urlsplit(url).netloc != urlsplit(base).netloc:
            raise TemplateError(f"rendered URL {url!r} leaves the host of {base!r} (refused)")
    headers = {
        name: _header_value(name, text)
        for name, value in {**(extra_headers or {}), **request.headers}.items()
        # A header that renders empty is left out, as an empty query parameter is (an
        # optional setting such as Walmart's market).
        if (text := templates.render(value, full)) != ""
    }
    rendered_json = None
    has_json = request.json is not None
    if has_json:
        rendered_json = templates.render_value(request.json, full, omit_none=True)
        headers.setdefault("Content-Type", "application/json")
    content = None
    if request.content is not None:
        content = templates.render(request.content, full, kind="xml")
        if request.content_type:
            headers["Content-Type"] = request.content_type
    form = tuple((k, templates.render(v, full)) for k, v in request.form.items())
    return RenderedRequest(
        method=request.method,
        url=url,
        params=_query(request.query, full),
        headers=tuple(headers.items()),
        json=rendered_json,
        has_json=has_json,
        form=form,
        content=content,
        operation=request.operation,
        system=system.name,
    )


def show(request: RenderedRequest, redact: Redactor) -> str:
    """A request as text for plan/explain output, secrets masked."""
    from urllib.parse import urlencode

    url = request.url + ("?" + urlencode(request.params) if request.params else "")
    lines = [f"{request.method} {url}"]
    lines += [f"{k}: {v}" for k, v in request.headers]
    if request.has_json:
        lines.append(json.dumps(request.json, indent=2, ensure_ascii=False))
    elif request.form:
        lines.append(urlencode(request.form))
    elif request.content is not None:
        lines.append(request.content)
    return redact("\n".join(lines))
