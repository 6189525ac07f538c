"""One finding type for every stage, and the three ways of printing it.

Every check in the project (YAML syntax, JSON Schema, references, templates, rule analysis)
produces :class:`Diagnostic` values, so that `connector validate` can sort, count and print
them uniformly and integrators' CI can parse a single stable format.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A finding about a file, pointing at the node it concerns.

    `line` and `column` are 1-based (as editors show them); 0 means "the whole file".
    `code` is a stable kebab-case identifier documented in docs/diagnostics.md.
    """

    file: str
    line: int
    column: int
    code: str
    severity: Severity = field(compare=False)
    message: str = field(compare=False)
    hint: str = field(default="", compare=False)

    def format_text(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.severity.value}: {self.message} [{self.code}]"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def format_github(self) -> str:
        level = {"error": "error", "warning": "warning", "info": "notice"}[self.severity.value]
        message = self.message + (f" ({self.hint})" if self.hint else "")
        message = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return (
            f"::{level} file={self.file},line={max(self.line, 1)},col={max(self.column, 1)},"
            f"title={self.code}::{message}"
        )

    def to_json(self) -> dict[str, object]:
        """The fields in order, the severity as its name (written out: `dataclasses.asdict`
        deep-copies every field, a tenth of `validate --format json` on a large table)."""
        return {"file": self.file, "line": self.line, "column": self.column, "code": self.code,
                "severity": self.severity.value, "message": self.message, "hint": self.hint}


def error(file: str, line: int, column: int, code: str, message: str, hint: str = "") -> Diagnostic:
    return Diagnostic(file, line, column, code, Severity.ERROR, message, hint)


def warning(file: str, line: int, column: int, code: str, message: str, hint: str = "") -> Diagnostic:
    return Diagnostic(file, line, column, code, Severity.WARNING, message, hint)


def render(diagnostics: Sequence[Diagnostic], fmt: str) -> str:
    """Render findings as `text` (one per line), `json` (a list) or `github` annotations."""
    ordered = sorted(diagnostics)
    if fmt == "json":
        return json.dumps([d.to_json() for d in ordered], indent=2)
    if fmt == "github":
        return "\n".join(d.format_github() for d in ordered)
    return "\n".join(d.format_text() for d in ordered)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix for the closest candidate, or ''."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
