"""Amazon SP-API simulator: LWA tokens, Orders v2026-01-01 search/get, v0 confirmShipment.

Shapes follow `orders_2026-01-01.json` and `ordersV0.json`; the order acknowledgement feed
(the seller's cancel route) lives in `amazon_feeds`. State rules: a shipment can only be
confirmed for a merchant-fulfilled order that is UNSHIPPED or PARTIALLY_SHIPPED (or SHIPPED,
which edits the package), and the seller can only cancel while UNSHIPPED.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import heapq
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from connector.sandbox.amazon_feeds import AmazonFeeds
from connector.sandbox.amazon_shipping import confirm_shipment
from connector.sandbox.clock import Clock, amazon_time, later, parse_time
from connector.sandbox.errors import amazon_error, amazon_invalid
from connector.sandbox.ratelimit import TokenBuckets
from connector.sandbox.server import Mount, Request, Response, Route, route

__all__ = ["PUBLISHED_LIMITS", "Amazon"]

CLIENT_ID = "amzn1.application-oa2-client.sandbox"
CLIENT_SECRET = "sandbox-lwa-client-secret"
REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
MARKETPLACE_ID = "ATVPDKIKX0DER"

# Default rate (requests/s) and burst per operation, from each operation's description.
PUBLISHED_LIMITS: dict[str, tuple[float, float]] = {
    "searchOrders": (0.0056, 20), "getOrder": (0.5, 30), "confirmShipment": (2.0, 10),
    "createFeedDocument": (0.5, 15), "createFeed": (0.0083, 15), "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
}

# includedData value governing each optional block (order level, then item level).
ORDER_BLOCKS = {"buyer": "BUYER", "recipient": "RECIPIENT", "proceeds": "PROCEEDS",
                "payment": "PAYMENT", "tax": "TAX", "fulfillment": "FULFILLMENT",
                "packages": "PACKAGES", "fulfillmentOrders": "FULFILLMENT_ORDERS"}
ITEM_BLOCKS = {"proceeds": "PROCEEDS", "expense": "EXPENSE", "promotion": "PROMOTION",
               "cancellation": "CANCELLATION", "fulfillment": "FULFILLMENT", "tax": "TAX"}
INCLUDED_DATA = frozenset(ORDER_BLOCKS.values()) | frozenset(ITEM_BLOCKS.values())
FULFILLMENT_STATUSES = frozenset({"PENDING_AVAILABILITY", "PENDING", "UNSHIPPED",
                                  "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED", "UNFULFILLABLE"})
FULFILLED_BY = frozenset({"MERCHANT", "AMAZON"})
# Parameters that a paginationToken request must repeat unchanged (all but these two).
_FILTERS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore",
            "fulfillmentStatuses", "marketplaceIds", "fulfilledBy")
TWO_MINUTES = timedelta(minutes=2)
TOKEN_LIFETIME = timedelta(hours=24)


@functools.lru_cache(maxsize=1 << 18)
def _moment(text: str) -> tuple[datetime | None, str]:
    """A stored timestamp parsed, and in SP-API's spelling (the page order); cached, as a
    search reads every order's (a benchmark lists 100,000 orders, page after page)."""
    moment = parse_time(text)
    return moment, amazon_time(moment) if moment is not None else ""


def _generic_error(status: int, message: str) -> Response:
    code = {400: "InvalidInput", 403: "Unauthorized", 404: "NotFound", 429: "QuotaExceeded",
            500: "InternalFailure", 503: "ServiceUnavailable"}.get(status, "InternalFailure")
    return amazon_error(status, code, message)


class Amazon:
    """State and handlers of the simulated SP-API for one seller."""

    def __init__(self, clock: Clock, lock: threading.RLock, base_url: Callable[[], str],
                 token_ttl: float = 3600.0,
                 rate_limits: bool | Mapping[str, tuple[float, float]] = False) -> None:
        self.clock = clock
        self.lock = lock
        self.orders: dict[str, dict[str, Any]] = {}
        self.credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                            "refresh_token": REFRESH_TOKEN}
        self.token_ttl = token_ttl
        self.tokens: dict[str, datetime] = {}
        # Changes younger than this are not served yet (searchOrders' default upper bound).
        self.freshness_lag = TWO_MINUTES
        self.acknowledgements: dict[str, list[str]] = {}
        # Per order, the tracking number of each package a fulfillment feed message shipped.
        self.fulfillments: dict[str, list[str]] = {}
        if rate_limits is True:
            self.limiter: TokenBuckets | None = TokenBuckets(PUBLISHED_LIMITS)
        elif rate_limits:
            self.limiter = TokenBuckets({**PUBLISHED_LIMITS, **rate_limits})
        else:
            self.limiter = None
        self.feeds_api = AmazonFeeds(self, base_url)

    # -- inspection ---------------------------------------------------------------------
    @property
    def feeds(self) -> dict[str, dict[str, Any]]:
        """Feed records by feedId (the Feed shape of feeds_2021-06-30)."""
        return self.feeds_api.feeds

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        """Feed documents by id: contentType and the uploaded or generated content."""
        return self.feeds_api.documents

    # -- mounting -----------------------------------------------------------------------
    def mounts(self) -> list[Mount]:
        """SP-API under /amazon, LWA under /amazon-auth, presigned URLs under /amazon-uploads."""
        api_routes = [
            route("GET", "/orders/2026-01-01/orders", self.search_orders, "searchOrders"),
            route("GET", "/orders/2026-01-01/orders/{orderId}", self.get_order, "getOrder"),
            route("POST", "/orders/v0/orders/{orderId}/shipmentConfirmation",
                  self.confirm_shipment, "confirmShipment"),
            *self.feeds_api.routes(),
        ]
        return [
            Mount("/amazon", "amazon", api_routes, _generic_error, self.authenticate,
                  self.throttle, self.decorate),
            Mount("/amazon-auth", "amazon", [route("POST", "/auth/o2/token", self.token)],
                  _lwa_error, relative_log=False),
            self.feeds_api.upload_mount(),
        ]

    # -- auth and limits ----------------------------------------------------------------
    def token(self, request: Request) -> Response:
        """LWA token exchange: grant_type=refresh_token with the sandbox's app credentials."""
        if "json" in (request.header("Content-Type") or ""):
            try:
                form = {str(k): str(v) for k, v in dict(request.json()).items()}
            except (ValueError, TypeError):
                return _lwa_error(400, "The request body is not valid JSON")
        else:
            parsed = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            form = {k: v[0] for k, v in parsed.items()}
        if form.get("grant_type") != "refresh_token":
            return Response.json(400, {"error": "unsupported_grant_type", "error_description":
                                       "The authorization grant type is not supported"})
        if (form.get("client_id") != self.credentials["client_id"]
                or form.get("client_secret") != self.credentials["client_secret"]):
            return Response.json(401, {"error": "invalid_client",
                                       "error_description": "Client authentication failed"})
        if form.get("refresh_token") != self.credentials["refresh_token"]:
            return Response.json(400, {"error": "invalid_grant", "error_description":
                                       "The request has an invalid grant parameter : "
                                       "refresh_token"})
        now = self.clock.now()
        self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        access_token = "Atza|" + secrets.token_urlsafe(24)
        self.tokens[access_token] = now + timedelta(seconds=self.token_ttl)
        ttl = float(self.token_ttl)
        return Response.json(200, {"access_token": access_token, "refresh_token":
                                   self.credentials["refresh_token"], "token_type": "bearer",
                                   "expires_in": int(ttl) if ttl.is_integer() else ttl})

    def prepare_search(self) -> None:
        """Parse every stored order's timestamps now, as the first search would (the cache
        `_moment`): a benchmark takes its memory baseline after this, so that the
        simulator's own per-order cache is not counted as the client's memory."""
        for order in self.orders.values():
            for field in ("createdTime", "lastUpdatedTime"):
                if isinstance(order.get(field), str):
                    _moment(order[field])

    def expire_tokens(self) -> None:
        """Expire every access token issued so far (a fault switch: the next call with one
        is refused, as when a token expires mid-run)."""
        with self.lock:
            now = self.clock.now()
            self.tokens = {token: min(expiry, now) for token, expiry in self.tokens.items()}

    def authenticate(self, request: Request) -> Response | None:
        """403 Unauthorized unless `x-amz-access-token` carries a live LWA token."""
        token = request.header("x-amz-access-token")
        expiry = self.tokens.get(token or "")
        headers = {"x-amzn-ErrorType": "AccessDeniedException"}
        if expiry is None:
            return amazon_error(403, "Unauthorized", "Access to requested resource is denied.",
                                "", headers)
        if expiry <= self.clock.now():
            return amazon_error(403, "Unauthorized", "Access to requested resource is denied.",
                                "The access token you provided has expired.", headers)
        return None

    def throttle(self, request: Request, found: Route) -> Response | None:
        """429 QuotaExceeded (no Retry-After, as documented) when the bucket is empty."""
        if self.limiter is not None and not self.limiter.take(found.operation):
            return amazon_error(429, "QuotaExceeded",
                                "You exceeded your quota for the requested resource.")
        return None

    def decorate(self, request: Request, found: Route | None, response: Response) -> None:
        """Every answer carries x-amzn-RequestId; limited operations report their rate."""
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        rate = self.limiter.rate(found.operation) if self.limiter and found else None
        if rate is not None and (200 <= response.status < 300 or response.status in (400, 404)):
            response.headers["x-amzn-RateLimit-Limit"] = f"{rate:g}"

    # -- orders -------------------------------------------------------------------------
    def _included(self, request: Request) -> frozenset[str]:
        values = request.args("includedData")
        unknown = [v for v in values if v not in INCLUDED_DATA]
        if unknown:
            raise amazon_invalid(f"Invalid includedData value(s): {', '.join(unknown)}",
                                 f"Allowed values: {', '.join(sorted(INCLUDED_DATA))}")
        return frozenset(values)

    def _project(self, order: dict[str, Any], included: frozenset[str]) -> dict[str, Any]:
        """The order as the API returns it: optional blocks only when asked for."""
        shown = {k: v for k, v in order.items()
                 if k not in ORDER_BLOCKS or ORDER_BLOCKS[k] in included}
        shown["orderItems"] = [{k: v for k, v in item.items()
                                if k not in ITEM_BLOCKS or ITEM_BLOCKS[k] in included}
                               for item in order["orderItems"]]
        return shown

    def _time(self, request: Request, name: str) -> datetime | None:
        text = request.arg(name)
        if text is None:
            return None
        moment = parse_time(text)
        if moment is None:
            raise amazon_invalid(f"Invalid {name}: {text!r} is not an ISO 8601 date-time")
        return moment

    def _window(self, request: Request) -> tuple[str, datetime, datetime]:
        """(field compared, lower bound, effective upper bound) of a first-page request."""
        created_after, created_before = (self._time(request, "createdAfter"),
                                         self._time(request, "createdBefore"))
        updated_after, updated_before = (self._time(request, "lastUpdatedAfter"),
                                         self._time(request, "lastUpdatedBefore"))
        if (created_after is None) == (updated_after is None):
            raise amazon_invalid("Exactly one of createdAfter and lastUpdatedAfter must be "
                                 "provided")
        if created_after is not None and (updated_before is not None):
            raise amazon_invalid("lastUpdatedBefore cannot be combined with createdAfter")
        if updated_after is not None and created_before is not None:
            raise amazon_invalid("createdBefore cannot be combined with lastUpdatedAfter")
        now = self.clock.now()
        lower = created_after if created_after is not None else updated_after
        upper = created_before if created_after is not None else updated_before
        name = "createdBefore" if created_after is not None else "lastUpdatedBefore"
        assert lower is not None
        if upper is not None:
            if upper > now - TWO_MINUTES:
                raise amazon_invalid(f"{name} must be at least two minutes before the time of "
                                     "the request",
                                     f"{name}={amazon_time(upper)}, now={amazon_time(now)}")
            if upper < lower:
                after = "createdAfter" if name == "createdBefore" else "lastUpdatedAfter"
                raise amazon_invalid(f"{name} must be equal to or after {after}")
        else:
            upper = now - self.freshness_lag
        return ("createdTime" if created_after is not None else "lastUpdatedTime"), lower, upper

    def search_orders(self, request: Request) -> Response:
        """searchOrders: filters, includedData, keyset pages with an opaque paginationToken."""
        self.feeds_api.process_pending()
        included = self._included(request)
        size_text = request.arg("maxResultsPerPage") or "100"
        if not size_text.isdigit() or not 1 <= int(size_text) <= 100:
            raise amazon_invalid("maxResultsPerPage must be an integer between 1 and 100")
        size = int(size_text)
        filters = {name: request.query.get(name, []) for name in _FILTERS if name in request.query}
        statuses, channels = request.args("fulfillmentStatuses"), request.args("fulfilledBy")
        markets = request.args("marketplaceIds")
        if set(statuses) - FULFILLMENT_STATUSES or set(channels) - FULFILLED_BY:
            raise amazon_invalid("Invalid fulfillmentStatuses or fulfilledBy value")
        if len(markets) > 50:
            raise amazon_invalid("marketplaceIds accepts at most 50 values")
        token = request.arg("paginationToken")
        after: tuple[str, str] | None = None
        if token:
            state = self._decode_token(token)
            if state["filters"] != filters:
                raise amazon_invalid("Invalid paginationToken: the request parameters must be "
                                     "the same as in the request that returned the token")
            field, lower, upper = state["field"], state["lower"], state["upper"]
            after = (state["key"][0], state["key"][1])
        else:
            field, lower, upper = self._window(request)
        def found() -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
            for order in self.orders.values():
                moment, stamp = _moment(order[field])
                fulfillment = order.get("fulfillment", {})
                if (moment is None or not lower <= moment <= upper
                        or (statuses and fulfillment.get("fulfillmentStatus") not in statuses)
                        or (channels and fulfillment.get("fulfilledBy") not in channels)
                        or (markets and order["salesChannel"].get("marketplaceId")
                            not in markets)):
                    continue
                key = (stamp, order["orderId"])
                if after is None or key > after:
                    yield key, order
        # the page and one more (is there a next page?), without sorting, or even holding,
        # every match: memory for one page whatever the orders stored
        page = heapq.nsmallest(size + 1, found(), key=lambda pair: pair[0])
        more = len(page) > size
        page = page[:size]
        body: dict[str, Any] = {"orders": [self._project(o, included) for _, o in page]}
        if more:
            body["pagination"] = {"nextToken": self._encode_token(
                {"filters": filters, "field": field, "lower": amazon_time(lower),
                 "upper": amazon_time(upper), "key": list(page[-1][0]),
                 "issued": amazon_time(self.clock.now())})}
        body["createdBefore" if field == "createdTime" else "lastUpdatedBefore"] = \
            amazon_time(upper)
        return Response.json(200, body)

    @staticmethod
    def _encode_token(state: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")

    def _decode_token(self, token: str) -> dict[str, Any]:
        try:
            padded = token + "=" * (-len(token) % 4)
            state = json.loads(base64.urlsafe_b64decode(padded.encode()))
            lower, upper = parse_time(state["lower"]), parse_time(state["upper"])
            issued = parse_time(state["issued"])
            assert lower and upper and issued and isinstance(state["filters"], dict)
        except (ValueError, KeyError, TypeError, AssertionError, binascii.Error):
            raise amazon_invalid("Invalid paginationToken") from None
        if issued + TOKEN_LIFETIME < self.clock.now():
            raise amazon_invalid("The paginationToken has expired (tokens are valid for 24 hours)")
        return {**state, "lower": lower, "upper": upper}

    def get_order(self, request: Request) -> Response:
        """getOrder: `{order}` with the requested blocks; 404 when unknown."""
        self.feeds_api.process_pending()
        included = self._included(request)
        order = self.orders.get(request.params["orderId"])
        if order is None:
            return amazon_error(404, "NotFound", "The requested order was not found.",
                                f"orderId {request.params['orderId']}")
        return Response.json(200, {"order": self._project(order, included)})

    def confirm_shipment(self, request: Request) -> Response:
        """confirmShipment (v0): see `amazon_shipping`."""
        return confirm_shipment(self, request)

    # -- helpers for tests and the feed processor ---------------------------------------
    def touch(self, order: dict[str, Any]) -> None:
        """Stamp a change: lastUpdatedTime moves strictly forward."""
        order["lastUpdatedTime"] = later(order.get("lastUpdatedTime"), self.clock.now(),
                                         amazon_time)

    def add_order(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a copy of an Order record (orders_2026-01-01 shape) and return it."""
        with self.lock:
            stored = copy.deepcopy(record)
            self.orders[stored["orderId"]] = stored
            return stored

    def set_status(self, order_id: str, status: str) -> None:
        """Force the fulfillment status (a transition made on Amazon's side)."""
        with self.lock:
            order = self.orders[order_id]
            order["fulfillment"]["fulfillmentStatus"] = status
            self.touch(order)

    def cancel(self, order_id: str, by: str = "AMAZON", reason: str | None = None) -> None:
        """Cancel on Amazon's side: CANCELLED, with cancellationExecution.cancelledBy = `by`."""
        with self.lock:
            order = self.orders[order_id]
            order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
            for item in order["orderItems"]:
                cancellation = item.setdefault("cancellation", {})
                if by == "BUYER" and "cancellationRequest" not in cancellation:
                    cancellation["cancellationRequest"] = {
                        "requester": "BUYER", "cancelReason": reason or "Order placed by mistake"}
                execution = {"cancelledBy": by}
                if reason:
                    execution["cancelReason"] = reason
                cancellation["cancellationExecution"] = execution
            self.touch(order)

    def request_cancellation(self, order_id: str, reason: str = "Order placed by mistake") -> None:
        """The buyer asks to cancel (not executed): cancellationRequest on every item."""
        with self.lock:
            order = self.orders[order_id]
            for item in order["orderItems"]:
                item.setdefault("cancellation", {})["cancellationRequest"] = {
                    "requester": "BUYER", "cancelReason": reason}
            self.touch(order)


def _lwa_error(status: int, message: str) -> Response:
    return Response.json(status, {"error": "invalid_request", "error_description": message})
