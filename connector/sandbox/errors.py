"""The error bodies of the simulated systems, in one place so every module answers alike.

- SP-API: `{"errors": [{code, message, details?}]}` (ErrorList in every model).
- VTEX OMS: `{"error": {code, message, exception}}` (StartHandling's 401/409 examples).
- Adobe Commerce: `{"message": "...%1...", "parameters": [...]}` (error-response), with
  placeholders left in the message as Magento does.
- Walmart: items are `GatewayError` (`us-mp-orders.json` `#/GatewayError`: code, field,
  description, info, severity, category, causes, errorIdentifiers), in the envelopes the
  research notes observed: `{"errors": {"error": [...]}}` from the orders service and
  `{"error": [...]}` from the gateway (401). Codes are `<CODE>.<SERVICE>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.sandbox.server import HttpError, Response

__all__ = ["amazon_error", "amazon_invalid", "magento_error", "magento_required", "vtex_error",
           "walmart_error", "walmart_invalid"]


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


def magento_required(name: str) -> HttpError:
    """Magento's message for a missing required input field, raised from a handler."""
    return HttpError(magento_error(400, '"%fieldName" is required. Enter and try again.',
                                   {"fieldName": name}))


def walmart_error(status: int, code: str, description: str, *, field: str = "",
                  gateway: bool = False, category: str = "DATA") -> Response:
    """A Walmart error: one GatewayError, in the orders service's or the gateway's envelope."""
    service = "GMP_GATEWAY_API" if gateway else "GMP_ORDER_API"
    item = {"code": f"{code}.{service}", "field": field or code.lower(),
            "description": description, "info": description, "severity": "ERROR",
            "category": category, "causes": [], "errorIdentifiers": {}}
    body: dict[str, Any] = {"error": [item]} if gateway else {"errors": {"error": [item]}}
    return Response.json(status, body)


def walmart_invalid(description: str, field: str = "",
                    code: str = "INVALID_REQUEST_CONTENT") -> HttpError:
    """A 400 from the orders service, raised from deep inside a handler."""
    return HttpError(walmart_error(400, code, description, field=field))
