"""Jinja, sandboxed, with escaping by position: the only way order data reaches a request.

Order fields come from a marketplace and are untrusted. Three environments share one
sandbox policy and differ in how an interpolated value is finalised:

* text: plain rendering (headers, query values, JSON leaves, arguments);
* path: every `{{ }}` output is percent-encoded as a single path segment, so `../`, `?`,
  `#`, `%2F` or a full URL in an order id cannot change the host or the path shape;
* xml: every output is XML-escaped (feed documents).

JSON bodies are built as data and encoded by the engine, never by string concatenation.

The package: `core` (the environments, `render`, `evaluate`, `render_value`), `syntax` (what
`validate` asks of a template without rendering it), `limits` (the bounds of one render),
`iteration` and `methods` (the bounds of going through
items and of string methods), `codegen` (the bounds' part of compiling), `filters` (Jinja's filters with those bounds),
`checks` (what every render would refuse, found statically), `secrets` (secret settings
opaque in templates).
"""

from __future__ import annotations

from connector.templates.core import (
    MAX_RENDERED, PATH, TEXT, XML, evaluate, render, render_value,
)
from connector.templates.secrets import Secret, opaque
from connector.templates.syntax import (
    check_expression, check_limits, check_syntax, dotted_references, variables,
)

__all__ = ["MAX_RENDERED", "PATH", "TEXT", "XML", "Secret", "check_expression", "check_limits",
           "check_syntax", "dotted_references", "evaluate", "opaque", "render", "render_value",
           "variables"]
