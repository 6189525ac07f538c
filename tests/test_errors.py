"""One exception hierarchy: every exception class the project defines is a ConnectorError, or
one of the few documented in connector/errors.py as never reaching a caller."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import connector
from connector import errors
from connector.errors import ConnectorError, HTTPError

#: Defined outside the hierarchy on purpose (errors.py says why); a new one must be argued there.
OUTSIDE = {"connector.load._TooLarge", "connector.load._TooDeep",
           "connector.transport.http._TooLarge",
           "connector.sandbox.server.HttpError", "connector.templates.limits.TemplateLimit",
           "connector.templates.secrets.SecretRefused"}


def project_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a connector module, by dotted name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(connector.__path__, "connector."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) \
                    and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_every_project_exception_is_a_connector_error_or_documented() -> None:
    found = project_exceptions()
    assert {name for name, cls in found.items() if not issubclass(cls, ConnectorError)} == OUTSIDE
    # they all live in errors.py; elsewhere only the documented signals
    assert {name for name in found if not name.startswith("connector.errors.")} == OUTSIDE


@pytest.mark.parametrize("name, base, exit_code", [
    ("ConfigError", ConnectorError, 2), ("UsageError", ConnectorError, 2),
    ("TemplateError", ConnectorError, 2), ("UndeclaredValue", ConnectorError, 2),
    ("PartitionFailed", ConnectorError, 2), ("Busy", ConnectorError, 1),
    ("LeaseLost", errors.Busy, 1), ("WorkerStopping", errors.LeaseLost, 1),
    ("HTTPError", ConnectorError, 1), ("AmbiguousOutcome", HTTPError, 1),
    ("RetriesExhausted", HTTPError, 1), ("ResponseTooLarge", HTTPError, 1),
    ("DocumentError", HTTPError, 1), ("StepFailed", HTTPError, 1),
])
def test_the_hierarchy_errors_py_draws(name: str, base: type[Exception], exit_code: int) -> None:
    """A caller catching HTTPError (an action failed remotely) or ConnectorError (any user
    error) catches what errors.py says, and the CLI exits with the documented code."""
    cls = getattr(errors, name)
    assert issubclass(cls, base) and cls.exit_code == exit_code
    assert name in (errors.__doc__ or "")
