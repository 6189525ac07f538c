"""`--record FILE`: a run's HTTP exchanges saved as a vcrpy cassette, secrets filtered out.

A production run becomes a regression test: the cassette replays offline (record mode
`none`). Nothing secret may reach the file: credential headers are masked by name, setting
values by the run's redactor, and OAuth fields (access and refresh tokens, client secrets)
by key in JSON and form bodies, since tokens issued during the run are not settings.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connector.render import MASK

SECRET_HEADERS = ("authorization", "x-amz-access-token", "x-vtex-api-appkey", "x-vtex-api-apptoken",
                  "cookie", "set-cookie", "vtexidclientautcookie")
_SECRET_FIELDS = ("access_token", "refresh_token", "client_secret", "client_id", "token")
_JSON_FIELD = re.compile(r'("(?:%s)"\s*:\s*")[^"]*(")' % "|".join(_SECRET_FIELDS))
_FORM_FIELD = re.compile(r"((?:^|&)(?:%s)=)[^&]*" % "|".join(_SECRET_FIELDS))
_SIGNATURE = re.compile(r"((?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&]*")


def scrub_text(text: str, redact: Callable[[str], str]) -> str:
    """Remove every secret from a body or URL."""
    text = redact(text)
    text = _JSON_FIELD.sub(lambda m: m.group(1) + MASK + m.group(2), text)
    text = _FORM_FIELD.sub(lambda m: m.group(1) + MASK, text)
    return _SIGNATURE.sub(lambda m: m.group(1) + MASK, text)


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
    for name in list(request.headers):
        if name.lower() in SECRET_HEADERS:
            request.headers[name] = MASK
        else:
            request.headers[name] = redact(str(request.headers[name]))
    request.uri = scrub_text(request.uri, redact)
    request.body = _scrub_body(request.body, redact)
    return request


def scrub_response(response: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            headers[name] = [MASK]
    body = response.get("body", {})
    if "string" in body:
        body["string"] = _scrub_body(body["string"], redact)
    return response


@contextlib.contextmanager
def recorder(path: Path, redact: Callable[[str], str]) -> Iterator[None]:
    """Record every HTTP exchange made inside the block into `path` (overwritten)."""
    import vcr

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    cassette_vcr = vcr.VCR(
        record_mode="all",
        decode_compressed_response=True,
        before_record_request=lambda request: scrub_request(request, redact),
        before_record_response=lambda response: scrub_response(response, redact),
    )
    with cassette_vcr.use_cassette(str(path)):
        yield
