"""Walmart's line-level state rules: acknowledge, cancel and ship order lines.

Walmart has no order status: each line holds a list of status entries, each for a quantity
(`orderLineStatuses.orderLineStatus[]`, `us-mp-orders.json` `#/OrderLineStatusType`), so two
units of one line can be Shipped and Cancelled. The rules the sandbox enforces:

- Created → Acknowledged (acknowledgeOrders: the whole order, no body);
- Created or Acknowledged → Cancelled (cancelOrderLines, with a `cancellationReason` of
  `#/CancelLineStatusType`; `CUSTOMER_REQUESTED_SELLER_TO_CANCEL` only for a line the customer
  intends to cancel, as the reason's description says);
- Acknowledged → Shipped (shippingUpdates: a line must be acknowledged first; a line the
  customer intends to cancel needs `intentToCancelOverride: true`; `processMode:
  PARTIAL_UPDATE` only updates the tracking of shipped units);
- Shipped, Delivered, Refund and Cancelled units never go back; Walmart-fulfilled (WFS) orders
  are Walmart's to acknowledge, cancel and ship.

Every request is checked whole before anything changes, so a refused request changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from connector.sandbox.errors import walmart_invalid

__all__ = [
    "CANCEL_REASONS",
    "CARRIERS",
    "METHOD_CODES",
    "acknowledge",
    "cancel_lines",
    "entries",
    "intends_to_cancel",
    "move",
    "quantity_in",
    "ship_lines",
]

# #/CancelLineStatusType.properties.cancellationReason.enum
CANCEL_REASONS = frozenset({"CUSTOMER_REQUESTED_SELLER_TO_CANCEL", "SELLER_CANCEL_PRICING_ERROR",
                            "SELLER_CANCEL_OUT_OF_STOCK", "SELLER_CANCEL_FRAUD_STOP_SHIPMENT",
                            "SELLER_CANCEL_ADDRESS_NOT_SERVICEABLE"})
# #/TrackingInfoType.properties.methodCode.enum
METHOD_CODES = frozenset({"Standard", "Express", "OneDay", "Freight", "WhiteGlove", "Value"})
# #/CarrierNameType.properties.carrier.enum
CARRIERS = frozenset({
    "UPS", "USPS", "FedEx", "Airborne", "OnTrac", "DHL Ecommerce - US", "DHL", "LS", "UDS",
    "UPSMI", "FDX", "PILOT", "ESTES", "SAIA", "FDS Express", "Seko Worldwide", "HIT Delivery",
    "FEDEXSP", "RL Carriers", "Metropolitan Warehouse & Delivery", "China Post", "YunExpress",
    "Yellow Freight Sys", "AIT Worldwide Logistics", "Chukou1", "Sendle", "Landmark Global",
    "Sunyou", "Yanwen", "4PX", "GLS", "OSM Worldwide", "FIRST MILE", "AM Trucking", "CEVA",
    "India Post", "SF Express", "CNE", "TForce Freight", "AxleHire", "LSO", "Royal Mail",
    "ABF Freight System", "WanB", "Roadrunner Freight", "Meyer Distribution", "AAA Cooper",
    "Canada Post", "Southeastern Freight Lines", "Japan Post", "Correos de Mexico",
    "XPO Logistics", "JD Logistics", "YDH", "JCEX", "Flyt", "Deutsche Post"})
UNITS = frozenset({"EACH", "EA"})
OPEN = ("Created", "Acknowledged")
_NO_INTENT = frozenset({"", "N", "NO", "FALSE"})


def entries(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The line's status entries (a list that can be changed in place)."""
    statuses: list[dict[str, Any]] = line.setdefault("orderLineStatuses", {}).setdefault(
        "orderLineStatus", [])
    return statuses


def _amount(entry: dict[str, Any]) -> int:
    text = str(entry.get("statusQuantity", {}).get("amount", "0"))
    return int(text) if text.isdigit() else 0


def quantity_in(line: dict[str, Any], statuses: Iterable[str]) -> int:
    """Units of the line whose status is one of `statuses`."""
    wanted = set(statuses)
    return sum(_amount(e) for e in entries(line) if e.get("status") in wanted)


def intends_to_cancel(line: dict[str, Any]) -> bool:
    """The customer asked to cancel the line (`intentToCancel`, a string in the spec)."""
    value = line.get("intentToCancel")
    return value is not None and str(value).strip().upper() not in _NO_INTENT


def move(line: dict[str, Any], amount: int, sources: Iterable[str],
         entry: dict[str, Any]) -> None:
    """Move `amount` units from entries in `sources` (first ones first) to a new status entry
    (merged into an equal entry: same status, reason and tracking)."""
    left, wanted = amount, tuple(sources)
    kept: list[dict[str, Any]] = []
    for current in entries(line):
        units = _amount(current)
        if left and current.get("status") in wanted:
            taken = min(units, left)
            left -= taken
            units -= taken
            current["statusQuantity"]["amount"] = str(units)
        if units > 0:
            kept.append(current)
    unit = line.get("orderLineQuantity", {}).get("unitOfMeasurement", "EACH")
    added = {**entry, "statusQuantity": {"unitOfMeasurement": unit, "amount": str(amount)}}
    for current in kept:
        if {k: v for k, v in current.items() if k != "statusQuantity"} == \
                {k: v for k, v in added.items() if k != "statusQuantity"}:
            current["statusQuantity"]["amount"] = str(_amount(current) + amount)
            break
    else:
        kept.append(added)
    line["orderLineStatuses"]["orderLineStatus"] = kept


def _refuse_wfs(order: dict[str, Any], what: str) -> None:
    if order.get("shipNode", {}).get("type") == "WFSFulfilled":
        raise walmart_invalid(f"Purchase order {order['purchaseOrderId']} is fulfilled by "
                              f"Walmart Fulfillment Services: it cannot be {what} by the seller",
                              "purchaseOrderId")


def acknowledge(order: dict[str, Any], now_ms: int) -> None:
    """acknowledgeOrders: every Created unit becomes Acknowledged (acknowledged again: no-op)."""
    _refuse_wfs(order, "acknowledged")
    lines = order["orderLines"]["orderLine"]
    if not any(quantity_in(line, OPEN) for line in lines):
        raise walmart_invalid(f"Purchase order {order['purchaseOrderId']} has no line that "
                              "can be acknowledged (lines are shipped or cancelled)",
                              "purchaseOrderId")
    for line in lines:
        created = quantity_in(line, ("Created",))
        if created:
            move(line, created, ("Created",), {"status": "Acknowledged"})
            line["statusDate"] = now_ms


def _body_lines(body: Any, wrapper: str) -> list[dict[str, Any]]:
    try:
        lines = body[wrapper]["orderLines"]["orderLine"]
    except (KeyError, TypeError):
        raise walmart_invalid(f"{wrapper}.orderLines.orderLine is required",
                              f"{wrapper}.orderLines.orderLine") from None
    if not isinstance(lines, list) or not lines or not all(isinstance(x, dict) for x in lines):
        raise walmart_invalid(f"{wrapper}.orderLines.orderLine must be a non-empty list",
                              f"{wrapper}.orderLines.orderLine")
    return lines


def _statuses(line: dict[str, Any], field: str) -> list[dict[str, Any]]:
    try:
        statuses = line["orderLineStatuses"]["orderLineStatus"]
    except (KeyError, TypeError):
        raise walmart_invalid("orderLineStatuses.orderLineStatus is required", field) from None
    if not isinstance(statuses, list) or not statuses:
        raise walmart_invalid("orderLineStatuses.orderLineStatus must be a non-empty list", field)
    return statuses


def _quantity(status: dict[str, Any], field: str) -> int:
    quantity = status.get("statusQuantity")
    if not isinstance(quantity, dict) or quantity.get("unitOfMeasurement") not in UNITS:
        raise walmart_invalid("statusQuantity.unitOfMeasurement must be EACH or EA",
                              f"{field}.statusQuantity")
    amount = quantity.get("amount")
    if not isinstance(amount, str) or not amount.isdigit() or int(amount) < 1:
        raise walmart_invalid("statusQuantity.amount must be a string holding a positive "
                              "whole number", f"{field}.statusQuantity.amount")
    return int(amount)


def _line(order: dict[str, Any], number: Any) -> dict[str, Any]:
    for line in order["orderLines"]["orderLine"]:
        if line["lineNumber"] == number:
            return line
    raise walmart_invalid(f"Line number {number!r} is not a line of purchase order "
                          f"{order['purchaseOrderId']}", "lineNumber")


def cancel_lines(order: dict[str, Any], body: Any, now_ms: int) -> dict[str, Any]:
    """cancelOrderLines: the listed units (Created or Acknowledged) become Cancelled."""
    _refuse_wfs(order, "cancelled")
    changed = copy.deepcopy(order)
    for request_line in _body_lines(body, "orderCancellation"):
        line = _line(changed, request_line.get("lineNumber"))
        for status in _statuses(request_line, "orderCancellation"):
            if status.get("status") != "Cancelled":
                raise walmart_invalid("status must be Cancelled", "status")
            reason = status.get("cancellationReason")
            if reason not in CANCEL_REASONS:
                raise walmart_invalid(f"Invalid cancellationReason {reason!r}",
                                      "cancellationReason")
            if reason == "CUSTOMER_REQUESTED_SELLER_TO_CANCEL" and not intends_to_cancel(line):
                raise walmart_invalid("Cancellation reason should not be "
                                      "CUSTOMER_REQUESTED_SELLER_TO_CANCEL for non intent to "
                                      "cancel orders", "cancellationReason")
            amount = _quantity(status, "orderCancellation")
            if amount > quantity_in(line, OPEN):
                raise walmart_invalid(f"Line {line['lineNumber']} has "
                                      f"{quantity_in(line, OPEN)} unit(s) that can be "
                                      f"cancelled, not {amount} (shipped or cancelled units "
                                      "cannot be cancelled)", "statusQuantity.amount")
            move(line, amount, OPEN, {"status": "Cancelled", "cancellationReason": reason})
            line["statusDate"] = now_ms
    return changed


def _tracking(status: dict[str, Any]) -> dict[str, Any]:
    info = status.get("trackingInfo")
    if not isinstance(info, dict):
        raise walmart_invalid("trackingInfo is required", "trackingInfo")
    if not isinstance(info.get("shipDateTime"), int) or isinstance(info["shipDateTime"], bool):
        raise walmart_invalid("trackingInfo.shipDateTime is required (epoch milliseconds)",
                              "trackingInfo.shipDateTime")
    if info.get("methodCode") not in METHOD_CODES:
        raise walmart_invalid(f"Invalid trackingInfo.methodCode {info.get('methodCode')!r}",
                              "trackingInfo.methodCode")
    if not isinstance(info.get("trackingNumber"), str) or not info["trackingNumber"].strip():
        raise walmart_invalid("trackingInfo.trackingNumber is required",
                              "trackingInfo.trackingNumber")
    carrier = info.get("carrierName")
    if not isinstance(carrier, dict) or not (carrier.get("carrier") or carrier.get("otherCarrier")):
        raise walmart_invalid("trackingInfo.carrierName needs carrier or otherCarrier",
                              "trackingInfo.carrierName")
    if carrier.get("carrier") is not None and carrier["carrier"] not in CARRIERS:
        raise walmart_invalid(f"Invalid carrier {carrier['carrier']!r} (use otherCarrier and "
                              "trackingURL for carriers outside the list)",
                              "trackingInfo.carrierName.carrier")
    if carrier.get("carrier") is None and not info.get("trackingURL"):
        raise walmart_invalid("trackingURL is mandatory with otherCarrier",
                              "trackingInfo.trackingURL")
    return {key: info[key] for key in ("shipDateTime", "carrierName", "methodCode",
                                       "trackingNumber", "trackingURL") if key in info}


def ship_lines(order: dict[str, Any], body: Any, now_ms: int) -> dict[str, Any]:
    """shippingUpdates: the listed Acknowledged units become Shipped with their tracking."""
    _refuse_wfs(order, "shipped")
    changed = copy.deepcopy(order)
    partial = isinstance(body, dict) and isinstance(body.get("orderShipment"), dict) and \
        body["orderShipment"].get("processMode") == "PARTIAL_UPDATE"
    for request_line in _body_lines(body, "orderShipment"):
        line = _line(changed, request_line.get("lineNumber"))
        seller_order = request_line.get("sellerOrderId")
        if not isinstance(seller_order, str) or not seller_order or len(seller_order) > 30:
            raise walmart_invalid("sellerOrderId is required (at most 30 characters)",
                                  "sellerOrderId")
        if intends_to_cancel(line) and request_line.get("intentToCancelOverride") is not True \
                and not partial:
            raise walmart_invalid(f"Line {line['lineNumber']} has a customer's intent to "
                                  "cancel: send intentToCancelOverride true to ship it",
                                  "intentToCancelOverride")
        for status in _statuses(request_line, "orderShipment"):
            if status.get("status") != "Shipped":
                raise walmart_invalid("status must be Shipped", "status")
            amount, tracking = _quantity(status, "orderShipment"), _tracking(status)
            if partial:
                shipped = [e for e in entries(line) if e.get("status") == "Shipped"]
                if not shipped:
                    raise walmart_invalid(f"Line {line['lineNumber']} is not shipped: "
                                          "PARTIAL_UPDATE only updates tracking",
                                          "processMode")
                for entry in shipped:
                    entry["trackingInfo"] = tracking
                continue
            ready = quantity_in(line, ("Acknowledged",))
            if amount > ready:
                created = quantity_in(line, ("Created",))
                hint = " (acknowledge the order first)" if created else ""
                raise walmart_invalid(f"Line {line['lineNumber']} has {ready} acknowledged "
                                      f"unit(s) to ship, not {amount}{hint}",
                                      "statusQuantity.amount")
            move(line, amount, ("Acknowledged",), {"status": "Shipped", "trackingInfo": tracking})
            line["statusDate"] = now_ms
        line["sellerOrderId"] = seller_order
    return changed
