"""The systems' error bodies turned into one readable line (VTEX, Magento, SP-API, HTML).

Integrators read these in the run summary: the remote system's own words, placeholders
filled, never a raw dump.
"""

from __future__ import annotations

import html
import json as jsonlib
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.http import HttpResponse

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_magento(message: str, parameters: Any) -> str:
    """Magento's placeholder rendering (Phrase\\Renderer\\Placeholder, a `strtr`): list
    item i fills `%{i+1}`; a named parameter fills `%name`; longer placeholders first."""
    if isinstance(parameters, list):
        pairs = {f"%{i + 1}": v for i, v in enumerate(parameters)}
    elif isinstance(parameters, dict):
        pairs = {f"%{int(k) + 1}" if str(k).isdigit() else f"%{k}": v
                 for k, v in parameters.items()}
    else:
        return message
    if not pairs:
        return message
    pattern = re.compile("|".join(re.escape(p) for p in sorted(pairs, key=len, reverse=True)))
    return pattern.sub(lambda m: str(pairs[m.group(0)]), message)


def _join(code: Any, message: str) -> str:
    code = code if isinstance(code, str) else ""
    return f"{code}: {message}" if code and message else code or message


def _describe(data: Any) -> str:
    """The error shapes of the three systems (see the research notes), recursively."""
    if isinstance(data, list):
        return "; ".join(filter(None, (_describe(item) for item in data)))
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    err = data.get("error")
    if isinstance(err, dict):  # VTEX OMS: {"error": {"code", "message", "exception"}}
        parts.append(_describe(err))
    elif isinstance(err, str):  # OAuth (LWA): {"error", "error_description"}
        desc = data.get("error_description")
        parts.append(_join(err, desc if isinstance(desc, str) else ""))
    message = data.get("message", data.get("description"))
    if isinstance(message, str):  # Magento, SP-API items, VTEX order-integration items
        text = _join(data.get("code"), render_magento(message, data.get("parameters")))
        details = data.get("details")
        parts.append(f"{text} ({details})" if isinstance(details, str) and details else text)
    if isinstance(data.get("errors"), list):  # SP-API, Magento, VTEX order integration
        parts.append(_describe(data["errors"]))
    return "; ".join(p for p in parts if p)


def error_message(response: HttpResponse, *, limit: int = 500) -> str:
    """A one-line, human-readable account of an error response's body."""
    status = response.status
    body = response.body.strip()
    ctype = response.headers.get("content-type", "").lower()
    if not body:
        reason = f" {response.reason}" if response.reason else ""
        return f"empty response (status {status}{reason})"
    head = body[:512].lower()
    if "html" in ctype or head.startswith(b"<!doctype html") or b"<html" in head:
        match = _TITLE.search(body)
        title = html.unescape(match.group(1).decode("utf-8", "replace")) if match else ""
        return _clip(f"HTML error page (status {status})" + (f": {title}" if title.strip()
                                                              else ""), limit)
    if "json" in ctype or body[:1] in (b"{", b"["):
        try:
            data = jsonlib.loads(body)
        except ValueError:
            return f"malformed JSON response (status {status})"
        return _clip(_describe(data) or jsonlib.dumps(data, ensure_ascii=False), limit)
    return _clip(response.text, limit)
