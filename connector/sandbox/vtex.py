"""VTEX OMS simulator: GetOrder, ListOrders, CancelOrder, StartHandling, InvoiceNotification.

Shapes follow "VTEX - Orders API.json"; reservations live in `vtex_logistics`. State rules
(research notes "When cancellation is possible"):

- `ready-for-handling` / `handling`: the first cancel moves to `cancellation-requested`, a
  cancel there moves to `canceled` (the seller accepting the request);
- before handling (`payment-pending`, `payment-approved`, `window-to-cancel`, …) one cancel
  moves to `canceled`;
- `invoiced` (or partially invoiced) is refused with 400 until a return invoice (`Input`)
  covers everything invoiced;
- `canceled` is terminal. Cancelling it again is undocumented; the sandbox answers 400 with an
  OMS error saying it is already canceled (the deny endpoint does the same for canceled
  orders), so a blind retry is visible rather than silently "successful".
"""

from __future__ import annotations

import copy
import math
import re
import threading
import uuid
from typing import Any

from connector.sandbox.clock import Clock, later, parse_time, vtex_time
from connector.sandbox.errors import vtex_error
from connector.sandbox.server import HttpError, Mount, Request, Response, route
from connector.sandbox.vtex_logistics import VtexLogistics

__all__ = ["STATUS_DESCRIPTIONS", "Vtex"]

APP_KEY = "vtexappkey-sandbox-SANDBOX"
APP_TOKEN = "SANDBOXAPPTOKENSANDBOXAPPTOKENSANDBOXAPPTOKEN"

STATUS_DESCRIPTIONS = {
    "order-created": "Order created", "payment-pending": "Payment pending",
    "payment-approved": "Payment approved", "window-to-cancel": "Window to cancel",
    "ready-for-handling": "Ready for handling", "start-handling": "Start handling",
    "handling": "Handling shipping", "invoice": "Verifying invoice", "invoiced": "Invoiced",
    "cancellation-requested": "Cancellation requested", "cancel": "Canceling",
    "canceled": "Canceled", "waiting-for-sellers-confirmation": "Waiting for seller's "
    "confirmation",
}
TWO_STEP_CANCEL = frozenset({"ready-for-handling", "handling"})
NOT_CANCELABLE = frozenset({"invoiced", "invoice", "order-created", "start-handling"})
INVOICEABLE = frozenset({"ready-for-handling", "handling", "cancellation-requested", "invoiced"})
LIST_STATUSES = frozenset({"waiting-for-sellers-confirmation", "payment-pending",
                           "payment-approved", "ready-for-handling", "handling", "invoiced",
                           "canceled"})
_RANGE = re.compile(r"^\w+:\[(?P<start>.+?) TO (?P<end>.+?)\]$")


def _error(status: int, message: str) -> Response:
    return vtex_error(status, str(status) if status != 401 else "1", message)


class Vtex:
    """State and handlers of the simulated VTEX account (OMS and logistics)."""

    def __init__(self, clock: Clock, lock: threading.RLock) -> None:
        self.clock = clock
        self.lock = lock
        self.orders: dict[str, dict[str, Any]] = {}
        self.credentials = {"app_key": APP_KEY, "app_token": APP_TOKEN}
        self.logistics = VtexLogistics(clock)
        self._before_request: dict[str, str] = {}

    @property
    def reservations(self) -> dict[str, dict[str, Any]]:
        """Reservations by LockId (the ReservationById shape)."""
        return self.logistics.reservations

    @property
    def inventory(self) -> dict[str, dict[str, Any]]:
        """Inventory by SKU id (the InventoryBySku shape: balance per warehouse)."""
        return self.logistics.inventory

    def mounts(self) -> list[Mount]:
        """OMS and logistics under /vtex, behind the app key/token pair."""
        routes = [
            route("GET", "/api/oms/pvt/orders", self.list_orders, "ListOrders"),
            route("GET", "/api/oms/pvt/orders/{orderId}", self.get_order, "GetOrder"),
            route("POST", "/api/oms/pvt/orders/{orderId}/cancel", self.cancel, "CancelOrder"),
            route("POST", "/api/oms/pvt/orders/{orderId}/start-handling", self.start_handling,
                  "StartHandling"),
            route("POST", "/api/oms/pvt/orders/{orderId}/invoice", self.invoice,
                  "InvoiceNotification"),
            *self.logistics.routes(),
        ]
        return [Mount("/vtex", "vtex", routes, _error, self.authenticate)]

    def authenticate(self, request: Request) -> Response | None:
        """401 without the key/token headers, 403 when they are not the account's."""
        key, token = request.header("X-VTEX-API-AppKey"), request.header("X-VTEX-API-AppToken")
        if not key or not token:
            return vtex_error(401, "1", "Unauthorized access")
        if key != self.credentials["app_key"] or token != self.credentials["app_token"]:
            return vtex_error(403, "403", "Forbidden. The credentials are not enabled to "
                              "access the service.")
        return None

    # -- reading ------------------------------------------------------------------------
    def _order(self, request: Request) -> dict[str, Any]:
        order_id = request.params["orderId"]
        order = self.orders.get(order_id)
        if order is None and order_id.startswith("seq"):
            order = next((o for o in self.orders.values() if o["sequence"] == order_id[3:]),
                         None)
        if order is None:
            raise HttpError(vtex_error(404, "404", f"Order {order_id} not found"))
        return order

    def get_order(self, request: Request) -> Response:
        """GetOrder: the full order (also by `seq{sequence}`)."""
        return Response.json(200, self._order(request))

    def list_orders(self, request: Request) -> Response:
        """ListOrders: filters, ordering and paging; entries without items, as documented."""
        try:
            page = int(request.arg("page") or 1)
            per_page = int(request.arg("per_page") or 15)
        except ValueError:
            return _error(400, "page and per_page must be integers")
        if not 1 <= page <= 30 or not 1 <= per_page <= 100:
            return _error(400, "page must be 1 to 30 and per_page 1 to 100")
        statuses = set(request.args("f_status"))
        if statuses - LIST_STATUSES:
            return _error(400, f"f_status accepts only {', '.join(sorted(LIST_STATUSES))}")
        window = _range(request.arg("f_creationDate"))
        affiliates = set(request.args("f_affiliateId"))
        channel = request.arg("salesChannelId")
        text = (request.arg("q") or "").strip().lower()
        found = []
        for order in self.orders.values():
            created = parse_time(order["creationDate"])
            profile = order.get("clientProfileData") or {}
            haystack = " ".join(str(v) for v in (
                order["orderId"], order.get("marketplaceOrderId"), profile.get("email"),
                profile.get("document"), profile.get("firstName"), profile.get("lastName"),
            ) if v).lower()
            if ((statuses and order["status"] not in statuses)
                    or (window and (created is None or not window[0] <= created <= window[1]))
                    or (affiliates and order.get("affiliateId") not in affiliates)
                    or (channel and order.get("salesChannel") != channel)
                    or (text and text not in haystack)):
                continue
            found.append(order)
        field, _, direction = (request.arg("orderBy") or "creationDate,desc").partition(",")
        keys = {"creationDate": lambda o: o["creationDate"], "orderId": lambda o: o["orderId"],
                "totalValue": lambda o: o.get("value", 0), "origin": lambda o: o["origin"]}
        if field not in keys:
            return _error(400, f"orderBy field {field!r} is not supported")
        found.sort(key=keys[field], reverse=direction.lower() != "asc")
        chunk = found[(page - 1) * per_page: page * per_page]
        return Response.json(200, {
            "list": [_summary(o) for o in chunk], "facets": [],
            "paging": {"total": len(found), "pages": math.ceil(len(found) / per_page),
                       "currentPage": page, "perPage": per_page},
            "stats": {"stats": {"totalValue": _stats([o.get("value", 0) for o in found]),
                                "totalItems": _stats([_item_count(o) for o in found])}},
        })

    # -- writing ------------------------------------------------------------------------
    def touch(self, order: dict[str, Any]) -> None:
        """Stamp a change on `lastChange` (strictly increasing)."""
        order["lastChange"] = later(order.get("lastChange"), self.clock.now(), vtex_time)

    def _set_status(self, order: dict[str, Any], status: str) -> None:
        order["status"] = status
        order["statusDescription"] = STATUS_DESCRIPTIONS.get(status, status)
        order["allowCancellation"] = status not in NOT_CANCELABLE | {"canceled", "cancel"}
        self.touch(order)

    def _receipt(self, order: dict[str, Any]) -> Response:
        return Response.json(200, {"date": vtex_time(self.clock.now()),
                                   "orderId": order["orderId"], "receipt": uuid.uuid4().hex})

    def cancel(self, request: Request) -> Response:
        """CancelOrder with the two-step rule in handling (see the module docstring)."""
        order = self._order(request)
        try:
            body = request.json() if request.body.strip() else {}
        except ValueError:
            return _error(400, "The request body is not valid JSON")
        reason = body.get("reason") if isinstance(body, dict) else None
        status = order["status"]
        if status in ("canceled", "cancel"):
            return vtex_error(400, "OrderAlreadyCanceled",
                              f"Order {order['orderId']} is already canceled")
        returned_all = all(q <= 0 for q in _invoiced(order).values())
        if status in NOT_CANCELABLE and not (status == "invoiced" and returned_all):
            return vtex_error(400, "OrderNotCancelable", f"Order {order['orderId']} cannot be "
                              f"canceled in status {status}; send a return invoice (type Input) "
                              "first")
        if any(q > 0 for q in _invoiced(order).values()):
            return vtex_error(400, "OrderNotCancelable",
                              "Partially invoiced orders cannot be canceled")
        now = vtex_time(self.clock.now())
        if status in TWO_STEP_CANCEL:
            self._before_request[order["orderId"]] = status
            order["cancellationRequests"] = (order.get("cancellationRequests") or []) + [{
                "id": str(uuid.uuid4()), "reason": reason, "cancellationRequestDate": now,
                "requestedByUser": False, "deniedBySeller": False,
                "deniedBySellerReason": None, "cancellationRequestDenyDate": None}]
            self._set_status(order, "cancellation-requested")
            return self._receipt(order)
        order["cancelReason"] = reason
        order["cancellationData"] = {
            "RequestedByUser": False, "RequestedBySystem": False,
            "RequestedBySellerNotification": True, "RequestedByPaymentNotification": False,
            "Reason": reason, "CancellationDate": now}
        self._set_status(order, "canceled")
        for lock_id in {item.get("lockId") for item in order.get("items", [])} - {None}:
            self.logistics.release(str(lock_id), 3)
        return self._receipt(order)

    def start_handling(self, request: Request) -> Response:
        """StartHandling: 204 from ready-for-handling, 409 OMS003 otherwise."""
        order = self._order(request)
        if order["status"] != "ready-for-handling":
            return vtex_error(409, "OMS003", "Order status should be ready-for-handling to "
                              "perform this action")
        self._set_status(order, "handling")
        return Response.empty(204)

    def invoice(self, request: Request) -> Response:
        """InvoiceNotification: Output invoices (→ invoiced when complete), Input returns."""
        order = self._order(request)
        try:
            body = request.json()
        except ValueError:
            return _error(400, "The request body is not valid JSON")
        problem = _check_invoice(body, order)
        if problem:
            return _error(400, problem)
        if order["status"] not in INVOICEABLE:
            return _error(400, f"Order {order['orderId']} cannot be invoiced in status "
                          f"{order['status']}")
        indexes = {item["id"]: index for index, item in enumerate(order["items"])}
        package = {key: body.get(key) for key in (
            "invoiceNumber", "invoiceKey", "invoiceUrl", "embeddedInvoice", "courier",
            "trackingNumber", "trackingUrl", "issuanceDate", "type")}
        package.update(
            items=[{"itemIndex": indexes[line["id"]], "quantity": line["quantity"],
                    "price": line["price"], "description": None, "unitMultiplier": 1.0}
                   for line in body["items"]],
            invoiceValue=int(body["invoiceValue"]), courierStatus=None, cfop=None,
            restitutions={}, volumes=None, EnableInferItems=None)
        order.setdefault("packageAttachment", {"packages": []})["packages"].append(package)
        if body["type"] == "Output":
            invoiced = _invoiced(order)
            if all(invoiced.get(i, 0) >= item["quantity"]
                   for i, item in enumerate(order["items"])):
                order["invoicedDate"] = vtex_time(self.clock.now())
                self._set_status(order, "invoiced")
            elif order["status"] == "cancellation-requested":
                self._set_status(order, self._before_request.pop(order["orderId"], "handling"))
            else:
                self.touch(order)
        else:
            self.touch(order)
        return self._receipt(order)

    # -- helpers for tests ----------------------------------------------------------------
    def add_order(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a copy of a GetOrder-shaped record and return it."""
        with self.lock:
            stored = copy.deepcopy(record)
            self.orders[stored["orderId"]] = stored
            return stored

    def set_status(self, order_id: str, status: str) -> None:
        """Force a status (a transition made elsewhere in VTEX)."""
        with self.lock:
            self._set_status(self.orders[order_id], status)


def _range(text: str | None) -> tuple[Any, Any] | None:
    if not text:
        return None
    match = _RANGE.match(text.strip())
    start = parse_time(match["start"]) if match else None
    end = parse_time(match["end"]) if match else None
    if start is None or end is None:
        raise HttpError(_error(400, f"Invalid date range {text!r}; expected "
                                    "creationDate:[FROM TO TO]"))
    return start, end


def _invoiced(order: dict[str, Any]) -> dict[int, int]:
    """Net invoiced quantity per item index (Output minus Input invoices)."""
    totals: dict[int, int] = {}
    for package in (order.get("packageAttachment") or {}).get("packages") or []:
        sign = -1 if package.get("type") == "Input" else 1
        for line in package.get("items") or []:
            index = line["itemIndex"]
            totals[index] = totals.get(index, 0) + sign * int(line.get("quantity", 0))
    return totals


def _check_invoice(body: Any, order: dict[str, Any]) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be an invoice object"
    missing = [k for k in ("type", "issuanceDate", "invoiceNumber", "invoiceValue", "items")
               if k not in body]
    if missing:
        return f"Missing required field(s): {', '.join(missing)}"
    if body["type"] not in ("Output", "Input"):
        return "type must be Output or Input"
    if not str(body["invoiceValue"]).isdigit() or int(body["invoiceValue"]) <= 0:
        return "invoiceValue must be a positive amount in cents, without separators"
    known = {item["id"] for item in order["items"]}
    if not isinstance(body["items"], list) or not body["items"]:
        return "items must list the invoiced SKUs"
    for line in body["items"]:
        if not isinstance(line, dict) or not {"id", "price", "quantity"} <= line.keys():
            return "each item needs id, price and quantity"
        if str(line["id"]) not in known:
            return f"SKU {line['id']} is not an item of the order"
    return None


def _item_count(order: dict[str, Any]) -> int:
    return sum(int(item.get("quantity", 0)) for item in order.get("items", []))


def _summary(order: dict[str, Any]) -> dict[str, Any]:
    """A ListOrders entry (note the spec's `marketPlaceOrderId` spelling there)."""
    profile = order.get("clientProfileData") or {}
    payments = [p.get("paymentSystemName") for t in (order.get("paymentData") or {}).get(
        "transactions", []) for p in t.get("payments", [])]
    return {
        "orderId": order["orderId"], "creationDate": order["creationDate"],
        "clientName": f"{profile.get('firstName', '')} {profile.get('lastName', '')}".strip(),
        "items": None, "totalValue": order.get("value", 0),
        "paymentNames": ", ".join(p for p in payments if p), "status": order["status"],
        "statusDescription": order.get("statusDescription"),
        "marketPlaceOrderId": order.get("marketplaceOrderId"), "sequence": order["sequence"],
        "salesChannel": order.get("salesChannel"), "affiliateId": order.get("affiliateId"),
        "origin": order.get("origin"), "workflowInErrorState": False,
        "workflowInRetry": False, "lastMessageUnread": None, "ShippingEstimatedDate": None,
        "ShippingEstimatedDateMax": None, "ShippingEstimatedDateMin": None,
        "orderIsComplete": True, "listId": None, "listType": None,
        "authorizedDate": order.get("authorizedDate"), "callCenterOperatorName": None,
        "totalItems": _item_count(order),
        "currencyCode": (order.get("storePreferencesData") or {}).get("currencyCode"),
    }


def _stats(values: list[int]) -> dict[str, Any]:
    count = len(values)
    mean = sum(values) / count if count else 0
    variance = sum((v - mean) ** 2 for v in values) / count if count else 0
    return {"Count": count, "Max": max(values, default=0), "Mean": mean,
            "Min": min(values, default=0), "Missing": 0, "StdDev": math.sqrt(variance),
            "Sum": sum(values), "SumOfSquares": sum(v * v for v in values), "Facets": {}}
