"""The project's exception types.

User errors (bad configuration, unreachable API, bad input file) are `ConnectorError`s: the CLI
prints their message and exits with their `exit_code`. Anything else is a bug: the CLI prints
a traceback and exits 3.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.diagnostics import Diagnostic


class ConnectorError(Exception):
    """A problem the integrator can fix; printed as one message, never a traceback."""

    exit_code = 2


class ConfigError(ConnectorError):
    """The configuration does not load or validate; carries the findings."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format_text() for d in self.diagnostics))


class UsageError(ConnectorError):
    """A command-line argument or input file is not usable as given."""


class TemplateError(ConnectorError):
    """A template failed to render for a particular order (missing field, sandbox refusal)."""


class HTTPError(ConnectorError):
    """A remote system answered with an error, or could not be reached."""

    exit_code = 1
