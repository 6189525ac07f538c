"""Walmart Marketplace simulator (US): token, orders with cursor pages, acknowledge, cancel, ship.

Shapes follow `us-mp-auth.json` (tokenAPI) and `us-mp-orders.json` (getAllOrders,
getAllReleasedOrders, getAnOrder, acknowledgeOrders, cancelOrderLines, shippingUpdates); the
line state rules are in `walmart_lines`, the error bodies in `errors.walmart_error`.

- Token: `POST /v3/token`, `Authorization: Basic base64(clientId:clientSecret)`, form
  `grant_type=client_credentials`; answers `OAuthToken` (`expires_in` 900 by default).
- Every call needs `WM_SVC.NAME` and `WM_QOS.CORRELATION_ID`; business calls also
  `WM_SEC.ACCESS_TOKEN` (401 from the gateway otherwise) and `Accept: application/json` (406).
  `WM_MARKET`, when sent, must name a market the sandbox serves (`markets`: `us` and `mx`);
  a call with `WM_MARKET: mx` is Walmart México's (`walmart_mx.WalmartMx`, its own orders and
  the MX Order API's paths and shapes).
- Listing: newest `orderDate` first; `limit` ≤ 200 (default 100); one `shipNodeType` per call
  (default SellerFulfilled); `list.meta.nextCursor` is a whole query string (starting with
  `?`) that repeats the filters with a fixed end date, as in the spec's example. Pages come
  from the result set of the first page (a cursor), so a change made while paging moves no
  order between pages. Orders have no modification field: the sandbox keeps one per order
  for `lastModifiedStartDate`/`lastModifiedEndDate`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import secrets
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from connector.sandbox.clock import Clock, parse_time
from connector.sandbox.errors import walmart_error, walmart_invalid
from connector.sandbox.server import Handler, HttpError, Mount, Request, Response, route
from connector.sandbox.walmart_lines import acknowledge, cancel_lines, entries, ship_lines
from connector.sandbox.walmart_mx import WalmartMx, mx_error

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "Walmart", "epoch_ms"]

CLIENT_ID = "sandbox-walmart-client-id"
CLIENT_SECRET = "sandbox-walmart-client-secret"
SHIP_NODE_TYPES = frozenset({"SellerFulfilled", "WFSFulfilled", "3PLFulfilled"})
LINE_STATUSES = frozenset({"Created", "Acknowledged", "Shipped", "Delivered", "Cancelled"})
_CURSOR_ONLY = ("hasMoreElements", "soIndex", "poIndex", "partnerId", "sellerId")
_FILTERS = ("sku", "customerOrderId", "purchaseOrderId", "status", "createdStartDate",
            "createdEndDate", "fromExpectedShipDate", "toExpectedShipDate",
            "lastModifiedStartDate", "lastModifiedEndDate", "shipNodeType",
            "shippingProgramType", "orderType", "productInfo", "replacementInfo")
PARTNER_ID, SELLER_ID = "100009", "8"


def epoch_ms(moment: datetime) -> int:
    """Walmart's timestamps: epoch milliseconds (orderDate, statusDate, shipDateTime)."""
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def _generic_error(status: int, message: str) -> Response:
    code = {400: "INVALID_REQUEST_CONTENT", 401: "UNAUTHORIZED", 404: "CONTENT_NOT_FOUND",
            406: "INVALID_ACCEPT_TYPE", 415: "UNSUPPORTED_MEDIA_TYPE",
            429: "REQUEST_THRESHOLD_VIOLATED"}.get(status, "SYSTEM_ERROR")
    return walmart_error(status, code, message, gateway=status in (401, 429),
                         category="SYSTEM" if status >= 500 else "REQUEST")


class Walmart:
    """State and handlers of the simulated Walmart Marketplace API for one seller."""

    def __init__(self, clock: Clock, lock: threading.RLock, token_ttl: float = 900.0) -> None:
        self.clock = clock
        self.lock = lock
        self.orders: dict[str, dict[str, Any]] = {}
        self.modified: dict[str, datetime] = {}
        self.credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        self.token_ttl = token_ttl
        self.tokens: dict[str, datetime] = {}
        self.markets = {"us", "mx"}
        self.mx = WalmartMx(clock)
        # The WM_MARKET header of every request (None: not sent), for tests.
        self.markets_seen: list[str | None] = []
        self._cursors: dict[str, list[str]] = {}

    def mounts(self) -> list[Mount]:
        """Token and orders under /walmart (the token is on the API's own host)."""
        mx, none = self.mx, None
        routes = [
            route("POST", "/v3/token", self.token, "tokenAPI"),
            route("GET", "/v3/orders", self._market(self.list_orders, mx.list_orders),
                  "getAllOrders"),
            route("GET", "/v3/orders/cursor", self._market(self.get_order, mx.list_cursor),
                  "getAllOrdersUsingCursor"),
            route("GET", "/v3/orders/wfsorders", self._market(self.get_order, mx.list_wfs),
                  "getAllWFSOrders"),
            route("GET", "/v3/orders/released", self._market(self.list_released, none),
                  "getAllReleasedOrders"),
            route("GET", "/v3/orders/{purchaseOrderId}", self._market(self.get_order, none),
                  "getAnOrder"),
            route("POST", "/v3/orders/{purchaseOrderId}/acknowledge",
                  self._market(self.acknowledge, mx.acknowledge), "acknowledgeOrders"),
            route("POST", "/v3/orders/{purchaseOrderId}/cancel",
                  self._market(self.cancel, mx.cancel), "cancelOrderLines"),
            route("POST", "/v3/orders/{purchaseOrderId}/shipping", self._market(self.ship, none),
                  "shippingUpdates"),
            route("POST", "/v3/orders/{purchaseOrderId}/ship", self._market(None, mx.ship),
                  "shippingUpdates"),
        ]
        return [Mount("/walmart", "walmart", routes, _generic_error, self.authenticate)]

    def _market(self, us: Handler | None, mx: Handler | None) -> Handler:
        """The handler of the request's market (WM_MARKET mx: México's), or 404 without one."""
        def handle(request: Request) -> Response:
            mexico = (request.header("WM_MARKET") or "").strip().lower() == "mx"
            handler = mx if mexico else us
            if handler is None:
                message = f"No route for {request.method} {request.path}"
                return mx_error(message, "path", "CONTENT_NOT_FOUND", 404) if mexico else \
                    _generic_error(404, message)
            return handler(request)
        return handle

    # -- auth -----------------------------------------------------------------------------
    def _headers(self, request: Request) -> Response | None:
        self.markets_seen.append(request.header("WM_MARKET"))
        for name in ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID"):
            if not (request.header(name) or "").strip():
                return walmart_error(400, "MISSING_REQUEST_HEADER", f"{name} header is required",
                                     field=name, gateway=True, category="REQUEST")
        market = request.header("WM_MARKET")
        if market is not None and market.strip().lower() not in self.markets:
            return walmart_error(400, "INVALID_REQUEST_HEADER",
                                 f"WM_MARKET {market!r} is not served here (markets "
                                 f"{', '.join(sorted(self.markets))})", field="WM_MARKET",
                                 gateway=True, category="REQUEST")
        return None

    def authenticate(self, request: Request) -> Response | None:
        """Required headers on every call; a live WM_SEC.ACCESS_TOKEN on business calls."""
        refused = self._headers(request)
        if refused is not None or request.path == "/v3/token":
            return refused
        expiry = self.tokens.get(request.header("WM_SEC.ACCESS_TOKEN") or "")
        if expiry is None or expiry <= self.clock.now():
            return walmart_error(401, "UNAUTHORIZED", "Unauthorized token or invalid token",
                                 field="UNAUTHORIZED", gateway=True, category="DATA")
        if "application/json" not in (request.header("Accept") or ""):
            return walmart_error(406, "INVALID_ACCEPT_TYPE",
                                 "Only supported Media Type : application/json", field="Accept",
                                 category="REQUEST")
        if request.body.strip() and "application/json" not in (request.header("Content-Type")
                                                               or ""):
            return walmart_error(415, "UNSUPPORTED_MEDIA_TYPE",
                                 "Content-Type must be application/json", field="Content-Type",
                                 category="REQUEST")
        return None

    def token(self, request: Request) -> Response:
        """tokenAPI with grant_type=client_credentials and the seller's Basic credentials."""
        scheme, _, encoded = (request.header("Authorization") or "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id, secret = "", ""
        if scheme.lower() != "basic" or (client_id, secret) != (
                self.credentials["client_id"], self.credentials["client_secret"]):
            return walmart_error(401, "UNAUTHORIZED", "Invalid client credentials",
                                 field="Authorization", gateway=True)
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return walmart_error(400, "INVALID_REQUEST_PARAM",
                                 "grant_type must be client_credentials for a seller's own "
                                 "keys", field="grant_type", gateway=True, category="REQUEST")
        now = self.clock.now()
        self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        access_token = "eyJraWQiOiJzYW5kYm94In0." + secrets.token_urlsafe(24)
        self.tokens[access_token] = now + timedelta(seconds=self.token_ttl)
        return Response.json(200, {"access_token": access_token, "token_type": "Bearer",
                                   "expires_in": int(self.token_ttl)})

    def expire_tokens(self) -> None:
        """Expire every access token now (the next call with one gets 401)."""
        with self.lock:
            now = self.clock.now()
            self.tokens = {token: min(expiry, now) for token, expiry in self.tokens.items()}

    # -- listing --------------------------------------------------------------------------
    def _date(self, request: Request, name: str) -> datetime | None:
        text = request.arg(name)
        if text is None or not text.strip():
            return None
        moment = parse_time(text.strip())
        if moment is None:
            raise walmart_invalid(f"Invalid {name} {text!r}: use yyyy-MM-dd or "
                                  "yyyy-MM-dd'T'HH:mm:ssZ", name, "INVALID_REQUEST_PARAM")
        return moment

    def _matches(self, order: dict[str, Any], request: Request, now: datetime) -> bool:
        created = datetime.fromtimestamp(order["orderDate"] / 1000, timezone.utc)
        modified = self.modified.get(order["purchaseOrderId"], created)
        bounds = (("createdStartDate", created, 1), ("createdEndDate", created, -1),
                  ("lastModifiedStartDate", modified, 1), ("lastModifiedEndDate", modified, -1))
        for name, moment, sign in bounds:
            limit = self._date(request, name)
            if limit is not None and (moment - limit) * sign < timedelta(0):
                return False
        if created < now - timedelta(days=180):
            return False
        node = request.arg("shipNodeType") or "SellerFulfilled"
        if order.get("shipNode", {}).get("type", "SellerFulfilled") != node:
            return False
        lines = order["orderLines"]["orderLine"]
        status = request.arg("status")
        if status and not any(e.get("status") == status for line in lines for e in entries(line)):
            return False
        for name, value in (("purchaseOrderId", order["purchaseOrderId"]),
                            ("customerOrderId", order["customerOrderId"])):
            if request.arg(name) and request.arg(name) != value:
                return False
        sku = request.arg("sku")
        return not sku or any(line["item"]["sku"] == sku for line in lines)

    def _validate(self, request: Request) -> int:
        limit = request.arg("limit") or "100"
        if not limit.isdigit() or not 1 <= int(limit) <= 200:
            raise walmart_invalid("limit must be a number from 1 to 200 (Cannot be larger than "
                                  "200)", "limit", "INVALID_REQUEST_PARAM")
        node = request.arg("shipNodeType")
        if node is not None and node not in SHIP_NODE_TYPES:
            raise walmart_invalid(f"Invalid shipNodeType {node!r}", "shipNodeType",
                                  "INVALID_REQUEST_PARAM")
        status = request.arg("status")
        if status is not None and status not in LINE_STATUSES:
            raise walmart_invalid(f"Invalid status {status!r}", "status", "INVALID_REQUEST_PARAM")
        return int(limit)

    def _list(self, request: Request, forced_status: str | None = None) -> Response:
        if forced_status is not None:
            request.query["status"] = [forced_status]
        limit = self._validate(request)
        now = self.clock.now()
        filters = {name: request.query[name][0] for name in _FILTERS if name in request.query}
        if request.arg("hasMoreElements") is not None:
            index = request.arg("poIndex") or ""
            key = urlencode(sorted(filters.items()))
            if not index.isdigit() or key not in self._cursors:
                raise walmart_invalid("Invalid or expired nextCursor", "nextCursor",
                                      "INVALID_REQUEST_PARAM")
            ids, offset = self._cursors[key], int(index)
        else:
            if not any(n in filters for n in ("createdStartDate", "lastModifiedStartDate")):
                filters["createdStartDate"] = _iso(now - timedelta(days=7))  # the spec's default
            end = "lastModifiedEndDate" if "lastModifiedStartDate" in filters else "createdEndDate"
            filters.setdefault(end, _iso(now))  # the cursor repeats a fixed end date
            request.query.update({name: [value] for name, value in filters.items()})
            found = [o for o in self.orders.values() if self._matches(o, request, now)]
            found.sort(key=lambda o: (o["orderDate"], o["purchaseOrderId"]), reverse=True)
            ids, offset = [o["purchaseOrderId"] for o in found], 0
            self._cursors[urlencode(sorted(filters.items()))] = ids
        page = [copy.deepcopy(self.orders[i]) for i in ids[offset:offset + limit]
                if i in self.orders]
        meta: dict[str, Any] = {"totalCount": len(ids), "limit": limit}
        if offset + limit < len(ids):
            cursor = {"limit": str(limit), "hasMoreElements": "true", "soIndex": str(len(ids)),
                      "poIndex": str(offset + limit), "partnerId": PARTNER_ID,
                      "sellerId": SELLER_ID, **filters}
            if forced_status is not None:
                cursor.pop("status", None)
            meta["nextCursor"] = "?" + urlencode(cursor, safe=":")
        return Response.json(200, {"list": {"meta": meta, "elements": {"order": page}}})

    def list_orders(self, request: Request) -> Response:
        """getAllOrders: filters, newest first, cursor pages (`list.meta.nextCursor`)."""
        return self._list(request)

    def list_released(self, request: Request) -> Response:
        """getAllReleasedOrders: orders with lines in Created (released to the seller)."""
        return self._list(request, forced_status="Created")

    # -- one order --------------------------------------------------------------------------
    def _order(self, request: Request) -> dict[str, Any]:
        order = self.orders.get(request.params["purchaseOrderId"])
        if order is None:
            raise HttpError(walmart_error(404, "CONTENT_NOT_FOUND",
                                          f"Purchase order {request.params['purchaseOrderId']} "
                                          "not found", field="purchaseOrderId"))
        return order

    def get_order(self, request: Request) -> Response:
        """getAnOrder: `{"order": …}`, as the spec's example (404 when unknown)."""
        return Response.json(200, {"order": copy.deepcopy(self._order(request))})

    def _write(self, order: dict[str, Any]) -> Response:
        self.orders[order["purchaseOrderId"]] = order
        self.touch(order["purchaseOrderId"])
        return Response.json(200, {"order": copy.deepcopy(order)})

    def _body(self, request: Request) -> Any:
        try:
            return request.json()
        except ValueError:
            raise walmart_invalid("The request body is not valid JSON", "body") from None

    def acknowledge(self, request: Request) -> Response:
        """acknowledgeOrders: the whole order's Created lines become Acknowledged."""
        order = copy.deepcopy(self._order(request))
        acknowledge(order, epoch_ms(self.clock.now()))
        return self._write(order)

    def cancel(self, request: Request) -> Response:
        """cancelOrderLines (see `walmart_lines.cancel_lines`)."""
        order = self._order(request)
        return self._write(cancel_lines(order, self._body(request), epoch_ms(self.clock.now())))

    def ship(self, request: Request) -> Response:
        """shippingUpdates (see `walmart_lines.ship_lines`)."""
        order = self._order(request)
        return self._write(ship_lines(order, self._body(request), epoch_ms(self.clock.now())))

    # -- helpers for tests ------------------------------------------------------------------
    def touch(self, purchase_order_id: str) -> None:
        """Stamp a change: the modification time moves strictly forward, in milliseconds as
        Walmart's dates are (a finer stamp could fall after a listing's end date of the same
        millisecond, written with milliseconds only, and be missed)."""
        now, before = self.clock.now(), self.modified.get(purchase_order_id)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self.modified[purchase_order_id] = now if before is None or now > before else \
            before + timedelta(milliseconds=1)

    def add_order(self, record: dict[str, Any], modified: datetime | None = None
                  ) -> dict[str, Any]:
        """Store a copy of a GetOrderResponseRecord and return it."""
        with self.lock:
            stored = copy.deepcopy(record)
            self.orders[stored["purchaseOrderId"]] = stored
            if modified is None:
                self.touch(stored["purchaseOrderId"])
            else:
                self.modified[stored["purchaseOrderId"]] = modified
            return stored

    def set_status(self, purchase_order_id: str, status: str, reason: str | None = None) -> None:
        """Walmart's side: every unit of every line gets `status` (Cancelled with `reason`)."""
        with self.lock:
            order = self.orders[purchase_order_id]
            for line in order["orderLines"]["orderLine"]:
                entry: dict[str, Any] = {"status": status,
                                         "statusQuantity": dict(line["orderLineQuantity"])}
                if reason is not None:
                    entry["cancellationReason"] = reason
                line["orderLineStatuses"]["orderLineStatus"] = [entry]
                line["statusDate"] = epoch_ms(self.clock.now())
            self.touch(purchase_order_id)

    def request_cancellation(self, purchase_order_id: str) -> None:
        """The customer asks to cancel (not executed): `intentToCancel` on every line."""
        with self.lock:
            for line in self.orders[purchase_order_id]["orderLines"]["orderLine"]:
                line["intentToCancel"] = "Y"
            self.touch(purchase_order_id)

    def line_statuses(self, purchase_order_id: str) -> list[str]:
        """Every status entry of the order, line by line (for assertions)."""
        return [e["status"] for line in self.orders[purchase_order_id]["orderLines"]["orderLine"]
                for e in entries(line)]

