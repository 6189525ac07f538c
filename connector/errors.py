"""The project's exception types.

User errors (bad configuration, unreachable API, bad input file) are `ConnectorError`s: the CLI
prints their message and exits with their `exit_code`. Anything else is a bug: the CLI prints
a traceback and exits 3. Every exception the project raises across a module boundary is here,
in one hierarchy, so that a caller catching `HTTPError` (an action failed remotely) or
`ConnectorError` (any user error) knows what it catches:

    ConnectorError (exit 2)
      ConfigError, UsageError, TemplateError
      UndeclaredValue: an order holds a status, actor or fulfilment its mapping does not declare
      Busy (exit 1): another process runs the flow partition
        LeaseLost: another process took the partition over while this run held it
          WorkerStopping: the worker stops, and its stop timeout came while the run waited
      PartitionFailed: a worker's partition run stopped on an error
      HTTPError (exit 1)
        AmbiguousOutcome, RetriesExhausted, ResponseTooLarge, DocumentError, StepFailed

Outside it on purpose, since none reaches a caller (tests/test_errors.py keeps the list):
`load._TooLarge`, `load._TooDeep` and `transport.http._TooLarge`, control-flow signals caught
in their own module and turned into a finding or one of the errors above; and
`sandbox.server.HttpError`,
raised by the simulators' handlers to answer with an error response and caught by the
simulated server itself. `templates.limits.TemplateLimit` and `templates.secrets.SecretRefused`
are Jinja sandbox errors raised inside a render (a bound gone over, a secret transformed):
Jinja's own machinery must see them as sandbox refusals, and `templates.render`/`evaluate`
turn them, as every Jinja error, into a `TemplateError` showing the template. A bug raises
what Python raises (KeyError for a ledger key never begun, ValueError for a condition
operator the schema rules out): a traceback, exit 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from connector.diagnostics import Diagnostic

if TYPE_CHECKING:
    from connector.transport.http import HttpResponse


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


class Busy(ConnectorError):
    """Another process runs this flow partition: this run stops without acting. Exit code 1,
    as for failures: the configuration is fine, and the holder or the next run does the work."""

    exit_code = 1


class LeaseLost(Busy):
    """Another process took this run's flow partition over (its lock's session ended, and the
    partition's lease epoch moved on): the run stops before its next request, and what it had
    in flight is settled by reading in the run that took over. A `Busy`: the new holder does
    the work."""


class WorkerStopping(LeaseLost):
    """The worker is stopping and its stop timeout came while the run waited (a rate limit,
    a poll): the run gives its partition up before its next request, as after a lost lease."""


class UndeclaredValue(ConnectorError):
    """An order's status, actor or fulfilment is outside its mapping's declared domain.

    The rules are written, and `validate` analyses them, over the declared domains; a value
    the system added since would match no rule (or only a `not_in` written without it) and
    pass with nothing sent and nothing said. The order fails instead, with the value, the
    field and the mapping file to declare it in, and is re-read on later runs."""


class PartitionFailed(ConnectorError):
    """A partition's run stopped on an error (message already redacted); the job fails and
    the next scheduling round runs the partition again."""


class AmbiguousOutcome(HTTPError):
    """A non-idempotent request may or may not have taken effect (5xx, timeout or dropped
    connection after sending). Settle it by re-reading the remote state; never resend."""

    def __init__(self, message: str, *, status: int | None = None,
                 response: HttpResponse | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response


class RetriesExhausted(HTTPError):
    """Every attempt failed retryably. For a non-idempotent request this means the server
    never acted (only 429s and connect failures are retried for those)."""

    def __init__(self, message: str, *, status: int | None, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ResponseTooLarge(HTTPError):
    """A read's response body exceeded the transport's bound; refused rather than buffered."""


class DocumentError(HTTPError):
    """A body that does not decode as its step declares (bad gzip, bad XML, too large)."""


class StepFailed(HTTPError):
    """An action's step did not succeed: `retryable` when trying again may (a 429, a 5xx
    before acting, a poll that never finished), not when the system refused (a 4xx)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
