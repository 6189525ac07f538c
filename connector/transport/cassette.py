"""`--record FILE`: a run's HTTP exchanges saved as a vcrpy cassette, secrets filtered out.

A production run becomes a regression test: the cassette replays offline (record mode
`none`). Nothing secret may reach the file: credential headers are masked by name (HTTP's
own, and those each mapping's auth section renders from a secret or token: no vendor's header
names are kept here), setting values by the run's redactor, and OAuth fields (access and
refresh tokens, client secrets) by key in JSON and form bodies, since tokens issued during
the run are not settings; query parameters the mappings declare as credentials
(`secret_query_params`, a presigned URL's signature) by name. Every credential met that way is remembered for the rest of the
recording (a token echoed in a later body), and secrets are also looked for percent-encoded
and JSON-escaped.

The cassette also carries the run's start time (and whatever the caller adds, e.g. the flows)
under a top-level `metadata:` key, so that `connector test --cassette` replays the run at its
own time: windows and `now`-based templates then render as they did. vcrpy ignores unknown
top-level keys when loading (it reads `interactions:` and `version:`; since 9.x it also keeps
`metadata:` as the cassette's own metadata), so the file stays a plain vcrpy cassette.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from connector.render import MASK

#: Credential headers of HTTP itself, masked whatever the mappings say; each mapping's own
#: come with the redactor (`Redactor.headers`, derived from its auth section).
GENERIC_SECRET_HEADERS = ("authorization", "cookie", "set-cookie")
_SECRET_FIELDS = ("access_token", "refresh_token", "client_secret", "client_id", "token")
_FIELDS = "|".join(_SECRET_FIELDS)
_JSON_FIELD = re.compile(rf'("(?:{_FIELDS})"\s*:\s*")([^"]*)(")')
# A form or query value ends at `&`, and, when the URL sits inside a JSON or XML body (the
# presigned upload URL of createFeedDocument), at the quote, bracket or space that closes it:
# masking up to the next `&` alone ate the closing `"}` and left the recorded body invalid JSON.
_VALUE = r"""[^&"'\s<>\\]*"""
_FORM_FIELD = re.compile(rf"((?:^|[&?])(?:{_FIELDS})=)({_VALUE})")


@functools.lru_cache(maxsize=32)
def _query_params(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """The values of the query parameters `names` (the mappings' `secret_query_params`)."""
    if not names:
        return None
    return re.compile(rf"((?:{'|'.join(map(re.escape, names))})=){_VALUE}")


class Scrubber:
    """The run's redactor plus the credentials met while recording, in every spelling
    (raw, percent-encoded as in a form body or query, JSON-escaped)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self._redact = redact
        self._lock = threading.Lock()
        self._known: tuple[str, ...] = ()
        self.headers = secret_header_names(redact)
        self.query_params: tuple[str, ...] = tuple(getattr(redact, "query_params", ()))
        for secret in getattr(redact, "secrets", ()):  # a Redactor: its settings, encoded
            self.learn(secret, minimum=4)

    def learn(self, value: str, *, minimum: int = 8) -> None:
        value = value.strip()
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() in ("bearer", "basic"):
            value = rest.strip()
        if len(value) < minimum or MASK in value:
            return
        forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        with self._lock:
            self._known = tuple(sorted({*self._known, *forms}, key=len, reverse=True))

    def learn_from(self, text: str) -> None:
        """Remember the values of OAuth fields in a JSON or form body."""
        for match in _JSON_FIELD.finditer(text):
            self.learn(match.group(2))
        for match in _FORM_FIELD.finditer(text):
            self.learn(unquote_plus(match.group(2)))

    def __call__(self, text: str) -> str:
        text = self._redact(text)
        for secret in self._known:
            text = text.replace(secret, MASK)
        return text


def secret_header_names(redact: Callable[[str], str]) -> frozenset[str]:
    """The headers masked by name: HTTP's own credential headers and those the redactor
    carries from the mappings' auth sections (lower case)."""
    return frozenset((*GENERIC_SECRET_HEADERS,
                      *(name.lower() for name in getattr(redact, "headers", ()))))


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return "" if body is None else str(body)


def scrub_text(text: str, redact: Callable[[str], str]) -> str:
    """Remove every secret from a body or URL."""
    text = redact(text)
    text = _JSON_FIELD.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    text = _FORM_FIELD.sub(lambda m: m.group(1) + MASK, text)
    signature = _query_params(tuple(getattr(redact, "query_params", ())))
    return text if signature is None else signature.sub(lambda m: m.group(1) + MASK, text)


def _scrub_body(body: Any, redact: Callable[[str], str]) -> Any:
    if body is None:
        return None
    if isinstance(body, bytes):
        try:
            return scrub_text(body.decode("utf-8"), redact).encode("utf-8")
        except UnicodeDecodeError:
            return body
    return scrub_text(str(body), redact)


def scrub_request(request: Any, redact: Callable[[str], str]) -> Any:
    secret = secret_header_names(redact)
    if isinstance(redact, Scrubber):
        for name in list(request.headers):
            if name.lower() in secret:
                redact.learn(str(request.headers[name]))
        redact.learn_from(_text(request.body))
    for name in list(request.headers):
        if name.lower() in secret:
            request.headers[name] = MASK
        else:
            request.headers[name] = redact(str(request.headers[name]))
    request.uri = scrub_text(request.uri, redact)
    request.body = _scrub_body(request.body, redact)
    return request


def scrub_response(response: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    secret = secret_header_names(redact)
    headers = response.get("headers", {})
    body = response.get("body", {})
    if isinstance(redact, Scrubber):
        for name in list(headers):
            if name.lower() in secret:
                for value in headers[name]:
                    redact.learn(str(value))
        redact.learn_from(_text(body.get("string")))
    for name in list(headers):
        if name.lower() in secret:
            headers[name] = [MASK]
        else:  # a Location header can hold a presigned URL
            headers[name] = [scrub_text(str(value), redact) for value in headers[name]]
    if "string" in body:
        body["string"] = _scrub_body(body["string"], redact)
    return response


def write_metadata(path: Path, values: Mapping[str, Any]) -> None:
    """Merge `values` into the cassette's top-level `metadata:` (the file is created, empty of
    interactions, when the run made no request: vcrpy writes nothing then)."""
    from vcr.serializers import yamlserializer

    data: dict[str, Any] = {"interactions": [], "version": 1}
    if path.exists() and path.read_text().strip():
        data = yamlserializer.deserialize(path.read_text())
    data["metadata"] = {**(data.get("metadata") or {}), **values}
    path.write_text(yamlserializer.serialize(data))


def read_metadata(path: Path) -> dict[str, Any]:
    """The cassette's `metadata:` ({} when it has none, e.g. one not written by `recorder`)."""
    from vcr.serializers import yamlserializer

    data = yamlserializer.deserialize(path.read_text())
    meta = data.get("metadata") if isinstance(data, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


@contextlib.contextmanager
def recorder(path: Path, redact: Callable[[str], str], *, started_at: datetime | None = None,
             meta: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Record every HTTP exchange made inside the block into `path` (overwritten).

    `started_at` is the run's time (the engine's `now`; the wall clock when not given) and
    `meta` extra metadata (`flows`, `mode`), both saved in the cassette for its replay.
    """
    import vcr

    started = (started_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    scrubber = Scrubber(redact)
    cassette_vcr = vcr.VCR(
        record_mode="all",
        decode_compressed_response=True,
        before_record_request=lambda request: scrub_request(request, scrubber),
        before_record_response=lambda response: scrub_response(response, scrubber),
    )
    try:
        with cassette_vcr.use_cassette(str(path)):
            yield
    finally:
        write_metadata(path, {"started_at": started.isoformat(), **(meta or {})})
