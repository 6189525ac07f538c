"""An error response's body turned into one readable line for the run summary.

Integrators read these: the remote system's own words, placeholders filled, never a raw
dump when it can be helped. Where those words are in a JSON body is each system's own
convention, so the mapping declares it (`connection.error_message`: JMESPaths tried in order,
the first that yields text wins). What is left here is protocol-generic and holds for any
server: an empty body, an HTML error page (its title), a body that claims JSON and does not
parse, plain text, and, when no declaration found words, the JSON itself, compacted.
"""

from __future__ import annotations

import html
import json as jsonlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jmespath
import jmespath.exceptions
from jmespath import functions

from connector.normalise import compile_path

if TYPE_CHECKING:
    from connector.transport.http import HttpResponse

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fill_placeholders(message: str, parameters: Any) -> str:
    """Placeholders filled the way PHP's `strtr` does it (the convention of frameworks whose
    error bodies carry `message` + `parameters`): list item i fills `%{i+1}`; a named
    parameter fills `%name`; longer placeholders first, so `%10` is not `%1` + "0"."""
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


class _Functions(functions.Functions):
    """JMESPath's functions plus `placeholders(message, parameters)` for error messages."""

    @functions.signature({"types": ["string"]}, {"types": ["array", "object", "null"]})
    def _func_placeholders(self, message: str, parameters: Any) -> str:
        return fill_placeholders(message, parameters)


#: The functions an `error_message` JMESPath may call besides JMESPath's own (for validate).
EXTRA_FUNCTIONS = ("placeholders",)
_OPTIONS = jmespath.Options(custom_functions=_Functions())


def _words(found: Any) -> str:
    """What a declaration found, as text: a string, or the non-empty strings of a (nested)
    list joined with "; "; anything else is no words."""
    if isinstance(found, str):
        return found.strip()
    if isinstance(found, list):
        return "; ".join(w for w in (_words(item) for item in found) if w)
    if isinstance(found, (int, float)) and not isinstance(found, bool):
        return str(found)
    return ""


def declared_message(declared: Sequence[str], data: Any) -> str:
    """The first declared JMESPath's words for a parsed body ("" when none has any). A body
    of another shape than the one an expression expects (a type error) is no words, not a
    failure: an error report must not fail over the error's own shape."""
    for expression in declared:
        try:
            words = _words(compile_path(expression).search(data, options=_OPTIONS))
        except jmespath.exceptions.JMESPathError:
            continue
        if words:
            return words
    return ""


def error_message(response: HttpResponse, declared: Sequence[str] = (), *,
                  limit: int = 500) -> str:
    """A one-line, human-readable account of an error response's body; `declared` are the
    system's `connection.error_message` JMESPaths."""
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
        words = declared_message(declared, data)
        return _clip(words or jsonlib.dumps(data, ensure_ascii=False), limit)
    return _clip(response.text, limit)
