"""Hints for YAML syntax errors, in the terms an integrator editing a rule file thinks in.

PyYAML describes what its parser expected (`expected <block end>, but found '<block mapping
start>'`); the usual causes are few (a tab, an indentation step, an unclosed quote or
bracket, a missing `: `), and the hint names the likely one with the line to look at.
"""

from __future__ import annotations

import yaml


def _line(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the start"


def _leading_tab(text: str, line: int) -> int | None:
    """1-based number of the first line up to `line` (0-based) indented with a tab, or None."""
    lines = text.splitlines()
    for number in range(min(line, len(lines) - 1), -1, -1):
        indent = lines[number][: len(lines[number]) - len(lines[number].lstrip(" \t"))]
        if "\t" in indent:
            return number + 1
    return None


def syntax_hint(exc: yaml.MarkedYAMLError, text: str) -> str:
    """The likely cause of a YAML syntax error and what to do about it, or ''."""
    problem = exc.problem or ""
    context = exc.context or ""
    mark = exc.problem_mark
    tab = _leading_tab(text, mark.line) if mark else None
    if "'\\t'" in problem or (tab is not None and mark is not None and tab == mark.line + 1):
        return (f"line {tab or (mark.line + 1 if mark else 1)} is indented with a tab: YAML "
                "indents with spaces only; replace the tab with spaces")
    if "quoted scalar" in context:
        return (f"the quote opened at {_line(exc.context_mark)} is never closed: add the "
                "closing quote (inside '...' write '' for a quote, inside \"...\" write \\\")")
    if "flow" in context or "flow" in problem:
        opened = (f"the '[' or '{{' opened at {_line(exc.context_mark)}"
                  if "sequence" in context or "mapping" in context else "a '[' or '{'")
        return (f"{opened} is not closed where expected: add the closing bracket, or quote a "
                "value containing ',', '[' or '{'")
    if "simple key" in context and "':'" in problem:
        return (f"{_line(exc.context_mark)} is neither 'key: value' nor a '- ' list item: "
                "add the missing ': ' (with a space after the colon) or fix the indentation")
    if "mapping values are not allowed" in problem:
        return ("a ': ' where a value was expected: either this line is indented deeper than "
                "the key above it, or the value contains ': ' and must be quoted")
    if "<block end>" in problem or "block" in context:
        where = f" (the block starts at {_line(exc.context_mark)})" if exc.context_mark else ""
        return ("indentation: this line is not aligned with the other entries of its block"
                f"{where}; indent it with the same number of spaces as its siblings")
    if tab is not None:
        return f"line {tab} is indented with a tab: YAML indents with spaces only"
    return ""
