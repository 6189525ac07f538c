"""One system's HTTP client: base URL, authentication and request rendering over `Transport`.

Kept apart from the stages that use it (fetch, look up, execute) so that authentication
(static headers, a bearer setting, or an LWA refresh-token exchange with a cached access
token refreshed once on 401/403) is written once for every request a system makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from connector.transport.auth import TokenCache, account_digest, shared
from connector.errors import HTTPError
from connector.transport.http import NO_JSON, HttpRequest, HttpResponse, Transport, error_message
from connector.model import Request, System
from connector.normalise import search
from connector.render import Redactor, RenderedRequest, render_request


def to_http(rendered: RenderedRequest, system: System | None = None) -> HttpRequest:
    """A rendered request as the transport sends it (body encoded here, once), with what
    `system`'s mapping says about reading its answers (rate headers, error words)."""
    headers = dict(rendered.headers)
    content: bytes | None = None
    if rendered.content is not None:
        content = rendered.content.encode()
    elif rendered.form:
        content = urlencode(rendered.form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    return HttpRequest(
        method=rendered.method,
        url=rendered.url,
        params=rendered.params,
        headers=headers,
        json=rendered.json if rendered.has_json else NO_JSON,
        content=content,
        operation=rendered.operation,
        system=rendered.system,
        rate_headers=system.rate_limit_headers if system is not None else (),
        error_messages=system.error_messages if system is not None else (),
    )


class SystemClient:
    """Sends a mapping's requests for one system with its settings and credentials."""

    def __init__(self, system: System, settings: Mapping[str, Any], transport: Transport,
                 redact: Redactor) -> None:
        self.system = system
        self.settings = dict(settings)
        self.transport = transport
        self.redact = redact
        self._tokens: TokenCache | None = None  # the transport's one for this account
        self._masked = ""  # the access token this client's redactor masks

    def _token(self) -> str:
        """The account's access token, shared by the transport's clients (auth.shared);
        "" without a token exchange. Masked by this client's redactor however fetched."""
        if not self.system.auth.exchanges_token:
            return ""
        if self._tokens is None:
            request = self.system.auth.token_request
            if request is None:
                raise HTTPError(f"{self.system.name}: auth kind {self.system.auth.kind} needs "
                                "a token_request")
            r = render_request(self.system, request, {}, self.settings)
            account = account_digest(self.system.name, r.method, r.url, r.params, r.headers,
                                     r.form, r.content, r.body_bytes())
            self._tokens = shared(self.transport, account, self._fetch_token)
        token = self._tokens.get(self._fetch_token)
        if token != self._masked:
            self.redact = self.redact.extended([token])
            self._masked = token
        return token

    def _fetch_token(self) -> tuple[str, float]:
        request = self.system.auth.token_request
        if request is None:
            raise HTTPError(f"{self.system.name}: auth kind {self.system.auth.kind} needs a token_request")
        rendered = render_request(self.system, request, {}, self.settings)
        # A header built from a secret (Basic base64(id:secret)) is a secret too.
        secret_names = [n for n, s in self.system.settings.items() if s.secret]
        derived = [value for name, value in rendered.headers
                   if any(f"settings.{n}" in request.headers.get(name, "") for n in secret_names)]
        if derived:  # the whole value and its credential part ("Basic <base64>")
            self.redact = self.redact.extended(derived + [v.split()[-1] for v in derived if v.split()])
        response = self.transport.send(to_http(rendered, self.system), idempotent=True)
        body = response.json()
        if response.status != 200 or not isinstance(body, dict):
            raise HTTPError(self.redact(
                f"{self.system.name}: token request failed: "
                f"{error_message(response, self.system.error_messages)}"))
        token = search(self.system.auth.token_field, body)
        expires = search(self.system.auth.expires_field, body) or 3600
        if not isinstance(token, str) or not token:
            raise HTTPError(f"{self.system.name}: token response has no {self.system.auth.token_field}")
        self.redact = self.redact.extended([token])
        return token, float(expires)

    def render(self, request: Request, context: Mapping[str, Any], token: str = "") -> RenderedRequest:
        full = {**context, "token": token}
        # A URL from a response (a presigned upload URL) is another host with its own
        # signature: the system's credentials are not sent there.
        auth = {} if request.url_from else self.system.auth.headers
        return render_request(self.system, request, full, self.settings, auth)

    def send(self, request: Request, context: Mapping[str, Any], *,
             idempotent: bool | None = None) -> HttpResponse:
        """Render and send; an expired token (401/403) is refreshed once and the call repeated.

        Repeating is safe: a 401/403 means the server refused the request without acting.
        """
        safe = request.method in ("GET", "HEAD") if idempotent is None else idempotent
        token = self._token()
        response = self._send(request, context, token, safe)
        if self._tokens is not None and response.status in (401, 403):
            self._tokens.invalidate(token)
            response = self._send(request, context, self._token(), safe)
        return response

    def _send(self, request: Request, context: Mapping[str, Any], token: str,
              idempotent: bool) -> HttpResponse:
        http = to_http(self.render(request, context, token), self.system)
        return self.transport.send(http, idempotent=idempotent)

    def describe_error(self, response: HttpResponse) -> str:
        return self.redact(f"{self.system.name} answered {response.status}: "
                           f"{error_message(response, self.system.error_messages)}")
