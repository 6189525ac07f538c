"""Walmart México simulator: the MX Order API for a seller whose calls send `WM_MARKET: mx`.

Shapes follow `mx-mp-orders.json` (research §9); `walmart.Walmart` hands every request with
`WM_MARKET: mx` to this class (same host, token and headers as the US).

- No getAnOrder and no change listing: `GET /v3/orders` (getAllOrders) by `offset`/`limit`
  (≤ 100, offset ≤ 1000) with `createdStartDate`/`createdEndDate` in epoch seconds and the
  `purchaseOrderId`, `customerOrderId` and `statusCodeFilter` filters, answering `#/MxOrder`
  (`meta.totalCount`, `order[]`); `GET /v3/orders/cursor` (getAllOrdersUsingCursor) with
  `statusCodeFilter` required, both dates or neither (`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`) and
  `cursorMark` (`*` first), answering `meta.nextCursorMark` until the last page; WFS orders
  (`seller.shipNodeType` `DC`) only at `GET /v3/orders/wfsorders` (getAllWFSOrders).
- Records are `#/Order`: `orderLines` a plain array, each line `primeLineNumber` with
  `orderLineStatus[]` entries (`status`, `statusQuantity`, `cancellationReason`, `statusDate`).
- acknowledgeOrders takes `#/OrderAckRequest` (the lines and their Created units),
  cancelOrderLines `#/OrderCancellationRequest` (a free-string reason), shippingUpdates is
  `POST /v3/orders/{purchaseOrderId}/ship` with `#/ShipmentMx` (carrier `MX-FEDX`, `MX-DHL`,
  `Estafeta`, `SFC` or `Other`, which also needs `trackingURL`); only Acknowledged units ship.
  Writes answer `202` with a string body; errors are `400` `{"error": Error}`.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from connector.sandbox.clock import Clock, parse_time
from connector.sandbox.server import HttpError, Request, Response
from connector.sandbox.walmart_lines import move

__all__ = ["CARRIERS", "STATUS_FILTERS", "WalmartMx", "mx_error", "mx_time"]

CARRIERS = frozenset({"MX-FEDX", "MX-DHL", "Estafeta", "SFC", "Other"})  # #/ShipmentDto
STATUS_FILTERS = frozenset({"Created", "Acknowledged", "Shipped", "Cancelled", "OnHold",
                            "Delivered"})
WFS_FILTERS = frozenset({"Created", "SentForFulfillment", "Shipped", "Cancelled", "Delivered"})
WFS_NODE = "DC"


def mx_time(moment: datetime) -> str:
    """México's timestamps: ISO 8601 with milliseconds and an offset (the spec's -06:00)."""
    local = moment.astimezone(timezone(timedelta(hours=-6)))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}-06:00"


def mx_error(description: str, field: str = "", code: str = "INVALID_REQUEST_CONTENT",
             status: int = 400) -> Response:
    """`#/ErrorResponse`: one `#/Error` under `error`."""
    return Response.json(status, {"error": {
        "code": f"{code}.GMP_ORDER_API", "field": field or code.lower(),
        "description": description, "info": description, "severity": "ERROR",
        "category": "DATA" if status < 500 else "SYSTEM",
        "errorIdentifiers": {"entry": []}}})


def _invalid(description: str, field: str = "") -> HttpError:
    return HttpError(mx_error(description, field))


def _amount(value: Any) -> int:
    text = str((value or {}).get("amount", "0"))
    return int(text) if text.isdigit() else 0


def units(line: dict[str, Any], statuses: Iterable[str]) -> int:
    """Units of an MX line whose status is one of `statuses`."""
    wanted = set(statuses)
    return sum(_amount(e.get("statusQuantity")) for e in line.get("orderLineStatus", [])
               if e.get("status") in wanted)


def _move(line: dict[str, Any], amount: int, sources: Iterable[str], entry: dict[str, Any]
          ) -> None:
    """`walmart_lines.move` on an MX line (its entries are `orderLineStatus`, not nested)."""
    view = {"orderLineStatuses": {"orderLineStatus": line.setdefault("orderLineStatus", [])},
            "orderLineQuantity": line.get("orderLineQuantity", {})}
    move(view, amount, sources, entry)
    line["orderLineStatus"] = view["orderLineStatuses"]["orderLineStatus"]


class WalmartMx:
    """State and handlers of the simulated Walmart México Order API for one seller."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.orders: dict[str, dict[str, Any]] = {}
        self._cursors: dict[str, tuple[list[str], int]] = {}

    # -- listings -------------------------------------------------------------------------
    def _limit(self, request: Request, most: int) -> int:
        text = request.arg("limit") or "10"
        if not text.isdigit() or not 1 <= int(text) <= most:
            raise _invalid(f"limit must be a number from 1 to {most}", "limit")
        return int(text)

    def _epoch(self, request: Request, name: str) -> datetime | None:
        text = (request.arg(name) or "").strip()
        if not text:
            return None
        if not text.isdigit():
            raise _invalid(f"Invalid {name} {text!r}: use epoch time in seconds", name)
        return datetime.fromtimestamp(int(text), timezone.utc)

    def _iso(self, request: Request, name: str) -> datetime | None:
        text = (request.arg(name) or "").strip()
        moment = parse_time(text) if text else None
        if text and (moment is None or "T" not in text):
            raise _invalid(f"Invalid {name} {text!r}: use yyyy-MM-dd'T'HH:mm:ss.SSSXXX", name)
        return moment

    def _found(self, request: Request, start: datetime | None, end: datetime | None,
               wfs: bool, filters: frozenset[str]) -> list[str]:
        status = request.arg("statusCodeFilter")
        if status is not None and status not in filters:
            raise _invalid(f"Invalid statusCodeFilter {status!r}", "statusCodeFilter")
        now = self.clock.now()
        start = start or now - timedelta(days=180)
        end = end or now
        found = []
        for order in self.orders.values():
            created = parse_time(order["orderDate"])
            lines = order["orderLines"]
            if created is None or not start <= created <= end:
                continue
            if (lines[0]["seller"]["shipNodeType"] == WFS_NODE) is not wfs:
                continue
            if status and not any(e.get("status") == status for line in lines
                                  for e in line["orderLineStatus"]):
                continue
            if any(request.arg(name) not in (None, order.get(name))
                   for name in ("purchaseOrderId", "customerOrderId")):
                continue
            found.append(order)
        found.sort(key=lambda o: (o["orderDate"], o["purchaseOrderId"]), reverse=True)
        return [o["purchaseOrderId"] for o in found]

    def _page(self, ids: list[str], offset: int, limit: int) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.orders[i]) for i in ids[offset:offset + limit]
                if i in self.orders]

    def list_orders(self, request: Request) -> Response:
        """getAllOrders: offset pages of seller orders, `#/MxOrder`."""
        return self._offset(request, wfs=False, most=100, filters=STATUS_FILTERS)

    def list_wfs(self, request: Request) -> Response:
        """getAllWFSOrders: offset pages of the orders Walmart fulfils (`#/WFSOrderResponse`)."""
        return self._offset(request, wfs=True, most=200, filters=WFS_FILTERS)

    def _offset(self, request: Request, *, wfs: bool, most: int,
                filters: frozenset[str]) -> Response:
        limit = self._limit(request, most)
        text = request.arg("offset") or "0"
        if not text.isdigit() or (not wfs and int(text) > 1000):
            raise _invalid("offset must be a number from 0 to 1000", "offset")
        ids = self._found(request, self._epoch(request, "createdStartDate"),
                          self._epoch(request, "createdEndDate"), wfs, filters)
        page = self._page(ids, int(text), limit)
        if wfs:  # #/WFSOrder: no purchaseOrderId (customerOrderId names the order)
            page = [{k: v for k, v in o.items() if k != "purchaseOrderId"} for o in page]
        return Response.json(200, {"meta": {"totalCount": len(ids), "limit": limit},
                                   "order": page})

    def list_cursor(self, request: Request) -> Response:
        """getAllOrdersUsingCursor: `meta.nextCursorMark` pages of one status's orders."""
        if not request.arg("statusCodeFilter"):
            raise _invalid("statusCodeFilter is required", "statusCodeFilter")
        limit = self._limit(request, 100)
        mark = request.arg("cursorMark") or "*"
        if mark == "*":
            start, end = self._iso(request, "createdStartDate"), self._iso(request, "createdEndDate")
            if (start is None) is not (end is None):
                raise _invalid("Either both createdStartDate and createdEndDate or none",
                               "createdStartDate")
            ids, offset = self._found(request, start, end, False, STATUS_FILTERS), 0
        elif mark in self._cursors:
            ids, offset = self._cursors.pop(mark)
        else:
            raise _invalid(f"Invalid or expired cursorMark {mark!r}", "cursorMark")
        meta: dict[str, Any] = {"totalCount": len(ids), "limit": limit}
        if offset + limit < len(ids):
            following = secrets.token_urlsafe(18)
            self._cursors[following] = (ids, offset + limit)
            meta["nextCursorMark"] = following
        return Response.json(200, {"meta": meta, "order": self._page(ids, offset, limit)})

    # -- writes ---------------------------------------------------------------------------
    def _order(self, request: Request, what: str) -> dict[str, Any]:
        number = request.params["purchaseOrderId"]
        order = self.orders.get(number)
        if order is None:
            raise _invalid(f"Purchase order {number} not found", "purchaseOrderId")
        if order["orderLines"][0]["seller"]["shipNodeType"] == WFS_NODE:
            raise _invalid(f"Purchase order {number} is fulfilled by Walmart (WFS): it cannot "
                           f"be {what} by the seller", "purchaseOrderId")
        return copy.deepcopy(order)

    def _lines(self, request: Request, *path: str) -> list[dict[str, Any]]:
        try:
            body = request.json()
        except ValueError:
            raise _invalid("The request body is not valid JSON", "body") from None
        for key in path:
            body = body.get(key) if isinstance(body, dict) else None
        if not isinstance(body, list) or not body:
            raise _invalid(f"{'.'.join(path)} must list at least one item", path[0])
        return [item for item in body if isinstance(item, dict)]

    @staticmethod
    def _line(order: dict[str, Any], number: Any) -> dict[str, Any]:
        for line in order["orderLines"]:
            if line["primeLineNumber"] == str(number):
                return line
        raise _invalid(f"Purchase order {order['purchaseOrderId']} has no line {number!r}",
                       "lineNumber")

    def _statuses(self, order: dict[str, Any], item: dict[str, Any], status: str
                  ) -> tuple[dict[str, Any], int, dict[str, Any]]:
        line = self._line(order, item.get("lineNumber"))
        entries = ((item.get("orderLineStatuses") or {}).get("orderLineStatus") or [{}])
        entry = entries[0] if isinstance(entries, list) and entries else {}
        if entry.get("status") != status:
            raise _invalid(f"line {line['primeLineNumber']}: status must be {status}", "status")
        return line, _amount(entry.get("statusQuantity")), entry

    def _apply(self, order: dict[str, Any], update: Callable[[dict[str, Any]], None]) -> Response:
        update(order)
        self.orders[order["purchaseOrderId"]] = order
        return Response.json(202, "Request accepted")

    def acknowledge(self, request: Request) -> Response:
        """acknowledgeOrders: the listed Created units become Acknowledged."""
        order = self._order(request, "acknowledged")
        items = self._lines(request, "orderAcknowledge", "orderLines", "orderLine")

        def update(order: dict[str, Any]) -> None:
            for item in items:
                line, amount, _ = self._statuses(order, item, "Acknowledged")
                if not 0 < amount <= units(line, ("Created",)):
                    raise _invalid(f"line {line['primeLineNumber']} has {units(line, ('Created',))}"
                                   f" Created units, not {amount}", "statusQuantity")
                _move(line, amount, ("Created",), {"status": "Acknowledged",
                                                   "statusCode": "3350.10",
                                                   "statusDate": mx_time(self.clock.now())})
        return self._apply(order, update)

    def cancel(self, request: Request) -> Response:
        """cancelOrderLines: the listed Created or Acknowledged units become Cancelled."""
        order = self._order(request, "cancelled")
        items = self._lines(request, "orderCancellation", "orderLines", "orderLine")

        def update(order: dict[str, Any]) -> None:
            for item in items:
                line, amount, entry = self._statuses(order, item, "Cancelled")
                reason = str(entry.get("cancellationReason") or "").strip()
                if not reason:
                    raise _invalid("cancellationReason is required", "cancellationReason")
                if not 0 < amount <= units(line, ("Created", "Acknowledged")):
                    raise _invalid(f"line {line['primeLineNumber']} cannot cancel {amount} units "
                                   "(shipped and cancelled units stay)", "statusQuantity")
                _move(line, amount, ("Created", "Acknowledged"), {
                    "status": "Cancelled", "statusCode": "9000", "cancellationReason": reason,
                    "statusDate": mx_time(self.clock.now())})
        return self._apply(order, update)

    def ship(self, request: Request) -> Response:
        """shippingUpdates (POST …/ship): Acknowledged units of the listed lines ship."""
        order = self._order(request, "shipped")
        shipments = self._lines(request, "shipments")

        def update(order: dict[str, Any]) -> None:
            for shipment in shipments:
                carrier = shipment.get("carrier")
                if carrier not in CARRIERS:
                    raise _invalid(f"Invalid carrier {carrier!r}: one of "
                                   f"{', '.join(sorted(CARRIERS))}", "carrier")
                if not str(shipment.get("trackingNumber") or "").strip():
                    raise _invalid("trackingNumber is required", "trackingNumber")
                if carrier == "Other" and not str(shipment.get("trackingURL") or "").strip():
                    raise _invalid("trackingURL is required with carrier Other", "trackingURL")
                lines = shipment.get("shipmentLines")
                if not isinstance(lines, list) or not lines:
                    raise _invalid("shipmentLines must list at least one line", "shipmentLines")
                for item in lines:
                    line = self._line(order, item.get("primeLineNo"))
                    amount = _amount(item.get("quantity"))
                    if not 0 < amount <= units(line, ("Acknowledged",)):
                        raise _invalid(f"line {line['primeLineNumber']}: only Acknowledged units "
                                       f"ship ({units(line, ('Acknowledged',))}), not {amount}",
                                       "quantity")
                    _move(line, amount, ("Acknowledged",), {
                        "status": "Shipped", "statusCode": "3700",
                        "statusDate": mx_time(self.clock.now())})
                order.setdefault("shipments", []).append({
                    "shipmentLines": copy.deepcopy(lines), "status": "Shipped",
                    "shipDateTime": mx_time(self.clock.now()), "carrier": carrier,
                    "trackingNumber": str(shipment["trackingNumber"]),
                    "trackingUrl": shipment.get("trackingURL") or ""})
        return self._apply(order, update)

    # -- helpers for tests ----------------------------------------------------------------
    def add_order(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a copy of a `#/Order` and return it."""
        stored = copy.deepcopy(record)
        self.orders[stored["purchaseOrderId"]] = stored
        return stored

    def line_statuses(self, purchase_order_id: str) -> list[str]:
        """Every status entry of the order, line by line (for assertions)."""
        return [e["status"] for line in self.orders[purchase_order_id]["orderLines"]
                for e in line["orderLineStatus"]]
