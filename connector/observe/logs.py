"""Structured logs: `--log-format json` (or `CONNECTOR_LOG_FORMAT=json`) writes every event
of a run to stderr as one JSON object a line, secrets masked.

The standard library's `logging` with a JSON formatter, not structlog: the events already
carry their fields (bound by `observe.bound`, a context variable), so all that is missing is
a formatter, about forty lines; `logging` is what procrastinate (the worker's queue) and
httpx log through, so one handler puts their records in the same stream and format; and it
is one dependency fewer to keep. structlog would pay off with processors chains and
pretty console output, which the text reporter (`connector.report`) already covers.

Text stays the default: the text reporter's summary on stdout is the command's output in
either format, and stderr carries the progress bar on a terminal (text) or the JSON lines.

Secrets: every line is masked with the run's redactor (each flow's secret settings, in
every spelling a system may echo them, registered by the runner through `add_secrets`), with
the values of secret-looking `CONNECTOR_*` environment variables from the start (before any
flow is prepared), and fields whose names say secret are masked whatever their value.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TextIO
from urllib.parse import urlsplit

from connector.errors import UsageError
from connector.observe import EVENTS
from connector.render import MASK, Redactor

FORMATS = ("text", "json")
#: The setting that chooses the format when `--log-format` is not given.
SETTING = "CONNECTOR_LOG_FORMAT"

_SECRET_NAME = re.compile(r"secret|token|password|passwd|authorization|api[_-]?key|app[_-]?key"
                          r"|credential|signature|cookie", re.IGNORECASE)
#: Loggers whose records join the events in JSON (the worker's queue, the HTTP debug line).
_OTHER_LOGGERS = ("connector.transport.http", "connector.observe", "procrastinate")


def choose(option: str | None, environ: Mapping[str, str]) -> str:
    """The format: the option, else `CONNECTOR_LOG_FORMAT`, else text."""
    value = (option or environ.get(SETTING) or "text").strip().lower()
    if value not in FORMATS:
        raise UsageError(f"{SETTING}={value!r}: use one of {', '.join(FORMATS)}")
    return value


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """Values of `CONNECTOR_*` variables whose names say secret, and the state URL's
    password: masked from the first line, before the flows' own secrets are known."""
    found = [value for name, value in environ.items()
             if name.startswith("CONNECTOR_") and _SECRET_NAME.search(name) and value]
    state = environ.get("CONNECTOR_STATE", "")
    if state:
        try:
            password = urlsplit(state).password
        except ValueError:
            password = None
        if password:
            found.append(password)
    return found


def _masked(value: Any) -> Any:
    """Fields named like a secret, masked at any depth."""
    if isinstance(value, Mapping):
        return {str(k): MASK if _SECRET_NAME.search(str(k)) and v not in (None, "")
                else _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, event, the bound fields and the event's."""

    def __init__(self) -> None:
        super().__init__()
        self._redact: Redactor = Redactor()
        self._lock = threading.Lock()

    def add_secrets(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._redact = self._redact.extended(secrets)

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, timezone.utc)
        data: dict[str, Any] = {
            "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
        }
        fields = getattr(record, "connector_fields", None)
        if isinstance(fields, Mapping):
            data["event"] = record.getMessage()
            data.update(_masked(fields))
        else:
            data.update(event="log", logger=record.name, message=record.getMessage())
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(data, default=str))


_handler: logging.Handler | None = None
_formatter: JsonFormatter | None = None


def configure(fmt: str, stream: TextIO, environ: Mapping[str, str] | None = None) -> None:
    """Turn the format on for this process: JSON lines on `stream`, or nothing (text, the
    text reporter's own output). Calling it again replaces the earlier configuration."""
    global _handler, _formatter
    reset()
    if fmt != "json":
        return
    formatter = JsonFormatter()
    formatter.add_secrets(environment_secrets(os.environ if environ is None else environ))
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    for name in (EVENTS.name, *_OTHER_LOGGERS):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
        if name == EVENTS.name:
            logger.setLevel(logging.INFO)
        elif logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
    _handler, _formatter = handler, formatter


def reset() -> None:
    """Back to no JSON logs (tests, a second `configure`)."""
    global _handler, _formatter
    if _handler is not None:
        for name in (EVENTS.name, *_OTHER_LOGGERS):
            logger = logging.getLogger(name)
            logger.removeHandler(_handler)
            logger.propagate = True
        EVENTS.setLevel(logging.NOTSET)
    _handler, _formatter = None, None


def enabled() -> bool:
    """Whether JSON logs are on (a progress bar would garble them on stderr)."""
    return _handler is not None


def add_secrets(secrets: Iterable[str]) -> None:
    """Mask these values too (the runner's redactor over the flows' secret settings)."""
    if _formatter is not None:
        _formatter.add_secrets(secrets)
