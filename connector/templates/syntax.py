"""What `validate` asks of a template without rendering it: its syntax, the names and dotted
paths it reads, and what every render of it would refuse (`checks`). One parse serves all."""

from __future__ import annotations

import functools

import jinja2
import jinja2.meta
import jinja2.nodes

from connector.templates import checks
from connector.templates.core import TEXT


@functools.lru_cache(maxsize=8192)
def _parse(source: str) -> jinja2.nodes.Template | jinja2.TemplateSyntaxError:
    """The template's syntax tree (or its syntax error), parsed once for every check.

    `validate` asks three questions of each template (syntax, names, dotted paths); parsing
    is the costly part, and the three environments share one syntax, so one parse serves all.
    """
    try:
        return TEXT.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return exc
    except RecursionError:  # `((((...` a few hundred deep: the parser recurses per level
        return jinja2.TemplateSyntaxError("expressions nested too deeply", 1)


def _tree(source: str) -> jinja2.nodes.Template | None:
    if "{" not in source:  # no `{{`, `{%` or `{#`: plain text, nothing to parse
        return None
    parsed = _parse(source)
    return None if isinstance(parsed, jinja2.TemplateSyntaxError) else parsed


def check_syntax(source: str, kind: str = "text") -> str | None:
    """The syntax error of a template (with its line inside the template), or None.

    `kind` is accepted for symmetry with `render`: the environments share one syntax.
    """
    if "{" not in source:
        return None
    parsed = _parse(source)
    if isinstance(parsed, jinja2.TemplateSyntaxError):
        return f"line {parsed.lineno} of the template: {parsed.message}"
    return None


def check_limits(source: str) -> list[tuple[int, str]]:
    """(line in the template, what) for each render bound the template goes over whatever
    the order (`checks.static_problems`), for validate."""
    tree = _tree(source)
    return [] if tree is None else checks.static_problems(tree, TEXT)


def check_expression(source: str) -> str | None:
    parsed = _parse("{{ " + source + " }}")
    if isinstance(parsed, jinja2.TemplateSyntaxError):
        return str(parsed.message)
    return None


def variables(source: str) -> set[str]:
    """Top-level names a template reads (for `validate`: names the context does not have)."""
    tree = _tree(source)
    return set() if tree is None else set(jinja2.meta.find_undeclared_variables(tree))


def dotted_references(source: str) -> set[str]:
    """Dotted paths a template reads (`order.status`, `args.reason`), for reference checks.

    Only plain attribute chains from a context name are reported; subscripts with
    non-constant keys end the chain.
    """
    tree = _tree(source)
    if tree is None:
        return set()
    found: set[str] = set()
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem, jinja2.nodes.Name)):
        parts: list[str] = []
        current: jinja2.nodes.Node = node
        while True:
            if isinstance(current, jinja2.nodes.Getattr):
                parts.append(current.attr)
                current = current.node
            elif isinstance(current, jinja2.nodes.Getitem) and isinstance(current.arg, jinja2.nodes.Const):
                parts.append(str(current.arg.value))
                current = current.node
            elif isinstance(current, jinja2.nodes.Name):
                parts.append(current.name)
                found.add(".".join(reversed(parts)))
                break
            else:
                break
    return found
