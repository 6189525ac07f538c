"""The error bodies of the three systems, in one place so every module answers alike.

- SP-API: `{"errors": [{code, message, details?}]}` (ErrorList in every model).
- VTEX OMS: `{"error": {code, message, exception}}` (StartHandling's 401/409 examples).
- Adobe Commerce: `{"message": "...%1...", "parameters": [...]}` (error-response), with
  placeholders left in the message as Magento does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.server import HttpError, Response

__all__ = ["amazon_error", "amazon_invalid", "magento_error", "vtex_error"]


def amazon_error(status: int, code: str, message: str, details: str | None = None,
                 headers: Mapping[str, str] | None = None) -> Response:
    """An SP-API ErrorList response."""
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Response.json(status, {"errors": [error]}, headers)


def amazon_invalid(message: str, details: str | None = None) -> HttpError:
    """A 400 InvalidInput, raised from deep inside a handler."""
    return HttpError(amazon_error(400, "InvalidInput", message, details))


def vtex_error(status: int, code: str, message: str) -> Response:
    """A VTEX OMS error body."""
    return Response.json(status, {"error": {"code": code, "message": message,
                                            "exception": None}})


def magento_error(status: int, message: str, parameters: Any = None) -> Response:
    """An Adobe Commerce error-response; `parameters` fills `%1…` or `%name` placeholders."""
    body: dict[str, Any] = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    return Response.json(status, body)
