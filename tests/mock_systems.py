"""Mock Amazon (LWA, SP-API orders and feeds) and VTEX OMS for the engine unit tests.

One `World` holds both systems' state in dicts and answers an `httpx.MockTransport`,
routing on host, method and path. Shapes follow the official specs (shared/specs):
SP-API searchOrders `{orders, pagination{nextToken}}`, getOrder `{order}`, errors
`{errors[{code, message, details}]}`; LWA `{access_token, refresh_token, token_type,
expires_in}` or `{error, error_description}`; VTEX GetOrder / CancelOrder, errors
`{error{code, message, exception}}`. VTEX cancels in two steps from `ready-for-handling` and
`handling` (first `cancellation-requested`, then `canceled`) and refuses once invoiced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from connector.transport.client import SystemClient
from connector.transport.http import Transport, new_client
from connector.plan import FlowRuntime, prepare
from connector.project import load_config, require
from connector.state.store import StateStore, open_store

ENGINE = Path(__file__).resolve().parent / "fixtures" / "engine"
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=timezone.utc)

REFRESH_TOKEN = "Atzr|IwEBrefresh-SECRET-1"
CLIENT_SECRET = "amzn1.oa2-cs.v1.client-SECRET-2"
APP_KEY = "vtexappkey-shop-SECRET3"
APP_TOKEN = "VTEXAPPTOKENSECRET4"
SECRETS = {
    "amazon": {"refresh_token": REFRESH_TOKEN, "client_secret": CLIENT_SECRET},
    "vtex": {"app_key": APP_KEY, "app_token": APP_TOKEN},
}

SPAPI = "sellingpartnerapi-na.amazon.com"
LWA = "api.amazon.com"
S3 = "tortuga-prod-na.s3-external-1.amazonaws.com"
VTEX = "shop.vtexcommercestable.com.br"

#: searchOrders parameters that may change between pages (the spec's exceptions).
_MAY_CHANGE = {"paginationToken", "maxResultsPerPage", "includedData"}


def amazon_order(
    order_id: str,
    status: str = "CANCELLED",
    *,
    cancelled_by: str | None = "MERCHANT",
    updated: str = "2026-03-02T10:00:00Z",
    fulfilled_by: str = "MERCHANT",
) -> dict[str, Any]:
    """An SP-API 2026-01-01 Order with the fields the test mapping reads."""
    item: dict[str, Any] = {
        "orderItemId": f"{order_id}-item",
        "quantityOrdered": 1,
        "product": {"sellerSku": "SKU-1"},
    }
    if cancelled_by is not None:
        item["cancellation"] = {"cancellationExecution": {"cancelledBy": cancelled_by}}
    return {
        "orderId": order_id,
        "createdTime": "2026-03-01T09:00:00Z",
        "lastUpdatedTime": updated,
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": fulfilled_by},
        "orderItems": [item],
    }


def vtex_order(order_id: str, status: str) -> dict[str, Any]:
    """A VTEX GetOrder body (the fields the test mapping reads)."""
    return {
        "orderId": order_id,
        "status": status,
        "lastChange": "2026-03-02T10:05:00Z",
        "marketplaceOrderId": order_id.split("-", 1)[-1].rsplit("-", 1)[0],
        "items": [{"id": "SKU-1", "quantity": 1}],
    }


def _vtex_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "exception": None}}
    )


def _spapi_error(status: int, code: str, message: str, details: str = "") -> httpx.Response:
    return httpx.Response(
        status, json={"errors": [{"code": code, "message": message, "details": details}]}
    )


@dataclass
class World:
    """Both systems' state and every request they received."""

    amazon: dict[str, dict[str, Any]] = field(default_factory=dict)
    vtex: dict[str, dict[str, Any]] = field(default_factory=dict)
    page_size: int = 2
    filter_window: bool = False  # answer only orders updated inside the requested window
    #: VTEX order id -> (status, body) answered to its cancel instead of the state rules
    cancel_answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    feed_statuses: list[str] = field(default_factory=lambda: ["IN_QUEUE", "IN_PROGRESS", "DONE"])
    accept_tokens: bool = True  # False: SP-API refuses every access token (a revoked app)
    refusal_status: int = 403  # what SP-API answers to an unknown or expired access token
    #: answers a request instead of the mock when it returns a response (errors, outages)
    intercept: Callable[[httpx.Request], httpx.Response | None] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    uploads: dict[str, bytes] = field(default_factory=dict)
    _page_tokens: dict[str, tuple[list[tuple[str, str]], int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- inspection ---------------------------------------------------------------------

    def calls(self, method: str | None = None, contains: str = "") -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and contains in r.url.path
        ]

    def listings(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/orders/2026-01-01/orders"]

    def mutating(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method != "GET" and r.url.host != LWA]

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def expire_page_tokens(self) -> None:
        self._page_tokens.clear()

    # --- routing ------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            if self.intercept is not None:
                answer = self.intercept(request)
                if answer is not None:
                    return answer
            host = request.url.host
            if host == LWA:
                return self._lwa(request)
            if host == SPAPI:
                return self._spapi(request)
            if host == S3:
                self.uploads[request.url.path] = request.content
                return httpx.Response(200)
            if host == VTEX:
                return self._vtex(request)
            return httpx.Response(502, text=f"no mock for {host}")

    def _lwa(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        if (request.method, request.url.path) != ("POST", "/auth/o2/token"):
            return httpx.Response(404)
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != REFRESH_TOKEN
            or form.get("client_secret") != CLIENT_SECRET
        ):
            return httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter : refresh_token",
                },
            )
        token = f"Atza|IwEBaccess-{len(self.tokens_issued) + 1}"
        self.tokens_issued.append(token)
        if self.accept_tokens:
            self.valid_tokens.add(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "refresh_token": REFRESH_TOKEN,
                "token_type": "bearer",
                "expires_in": 3600,
            },
        )

    def _spapi(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-amz-access-token") not in self.valid_tokens:
            return _spapi_error(
                self.refusal_status,
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided has expired.",
            )
        path, method = request.url.path, request.method
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/orders/2026-01-01/orders":
            return self._search(request)
        if method == "GET" and parts[:3] == ["orders", "2026-01-01", "orders"] and len(parts) == 4:
            order = self.amazon.get(parts[3])
            if order is None:
                return _spapi_error(404, "NotFound", f"Order {parts[3]} not found")
            return httpx.Response(200, json={"order": order})
        if method == "POST" and path == "/feeds/2021-06-30/documents":
            number = len(self.uploads) + 1
            return httpx.Response(
                201,
                json={
                    "feedDocumentId": f"amzn1.tortuga.4.na.doc-{number}",
                    "url": f"https://{S3}/doc-{number}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                    f"&X-Amz-Signature=presigned-signature-{number}",
                },
            )
        if method == "POST" and path == "/feeds/2021-06-30/feeds":
            body = json.loads(request.content)
            return httpx.Response(202, json={"feedId": "feed-for-" + body["inputFeedDocumentId"]})
        if method == "GET" and parts[:3] == ["feeds", "2021-06-30", "feeds"] and len(parts) == 4:
            status = (
                self.feed_statuses.pop(0) if len(self.feed_statuses) > 1 else self.feed_statuses[0]
            )
            return httpx.Response(
                200,
                json={
                    "feedId": parts[3],
                    "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
                    "processingStatus": status,
                },
            )
        return _spapi_error(404, "NotFound", f"no route {method} {path}")

    def _search(self, request: httpx.Request) -> httpx.Response:
        params = list(request.url.params.multi_items())
        fixed = sorted((k, v) for k, v in params if k not in _MAY_CHANGE)
        token = request.url.params.get("paginationToken")
        if token is not None:
            if token not in self._page_tokens:
                return _spapi_error(400, "InvalidInput", "Invalid paginationToken")
            first, offset = self._page_tokens[token]
            if fixed != first:
                return _spapi_error(
                    400, "InvalidInput", "Invalid Input", "parameters must not change between pages"
                )
        else:
            offset = 0
        query = dict(params)
        if "lastUpdatedAfter" not in query:
            return _spapi_error(
                400,
                "InvalidInput",
                "Invalid Input",
                "one of createdAfter or lastUpdatedAfter is required",
            )
        orders = sorted(self.amazon.values(), key=lambda o: (o["lastUpdatedTime"], o["orderId"]))
        if self.filter_window:
            after, before = query["lastUpdatedAfter"], query.get("lastUpdatedBefore", "9999")
            orders = [o for o in orders if after <= o["lastUpdatedTime"] < before]
        page = orders[offset : offset + self.page_size]
        body: dict[str, Any] = {"orders": page}
        if offset + self.page_size < len(orders):
            next_token = f"token-{len(self._page_tokens) + 1}"
            self._page_tokens[next_token] = (fixed, offset + self.page_size)
            body["pagination"] = {"nextToken": next_token}
        return httpx.Response(200, json=body)

    def _vtex(self, request: httpx.Request) -> httpx.Response:
        if (
            request.headers.get("X-VTEX-API-AppKey") != APP_KEY
            or request.headers.get("X-VTEX-API-AppToken") != APP_TOKEN
        ):
            return _vtex_error(401, "1", "Unauthorized")
        parts = request.url.path.strip("/").split("/")
        if parts[:4] != ["api", "oms", "pvt", "orders"] or len(parts) < 5:
            return _vtex_error(404, "1", "Not found")
        order = self.vtex.get(parts[4])
        if request.method == "GET" and len(parts) == 5:
            if order is None:
                return _vtex_error(404, "OMS004", "Pedido não encontrado")
            return httpx.Response(200, json=order)
        if request.method == "POST" and parts[5:] == ["cancel"]:
            if parts[4] in self.cancel_answers:
                status, body = self.cancel_answers[parts[4]]
                return httpx.Response(status, json=body)
            if order is None:
                return _vtex_error(404, "OMS004", "Pedido não encontrado")
            if order["status"] in ("invoiced", "canceled"):
                return _vtex_error(
                    403,
                    "OMS003",
                    f"Order status should be ready-for-handling, is {order['status']}",
                )
            order["status"] = (
                "cancellation-requested"
                if order["status"] in ("ready-for-handling", "handling")
                else "canceled"
            )
            return httpx.Response(
                200,
                json={
                    "date": "2026-03-02T12:00:01.000Z",
                    "orderId": order["orderId"],
                    "receipt": f"receipt-{order['orderId']}-{order['status']}",
                },
            )
        return _vtex_error(404, "1", "Not found")


def runtime(root: Path = ENGINE, flow: str = "amazon-to-vtex") -> FlowRuntime:
    """The fixture flow with the test secrets set."""
    return prepare(require(load_config(root)), flow, environ={}, system_overrides=SECRETS)


@dataclass
class Harness:
    runtime: FlowRuntime
    transport: Transport
    clients: dict[str, SystemClient]
    store: StateStore


@contextmanager
def harness(world: World, db: Path, root: Path = ENGINE,
            now: Callable[[], datetime] | None = None) -> Iterator[Harness]:
    """Clients over a MockTransport answering from `world`, and an SQLite store at `db`
    keeping time with the run (`now`), as a real run's store keeps the real time."""
    rt = runtime(root)
    transport = Transport(new_client(transport=httpx.MockTransport(world)), sleep=lambda s: None)
    clients = {
        name: SystemClient(system, rt.system_settings[name], transport, rt.redact)
        for name, system in rt.systems.items()
    }
    store = open_store("sqlite:///" + str(db), **({"now": now} if now else {}))
    try:
        yield Harness(rt, transport, clients, store)
    finally:
        store.close()
        transport.close()
