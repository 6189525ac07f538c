"""What the Feeds simulator does with one message of an order feed.

Two feed types are simulated, each an AmazonEnvelope of one MessageType (research notes §5
and §6; the XSDs themselves are not in ../shared/specs, see SOURCES.md "Not copied"):
- POST_ORDER_ACKNOWLEDGEMENT_DATA, `OrderAcknowledgement`: `StatusCode Failure` cancels the
  order (a `CancelReason` per `Item`), only while it is UNSHIPPED.
- POST_ORDER_FULFILLMENT_DATA, `OrderFulfillment`: `AmazonOrderID`, `FulfillmentDate`,
  `FulfillmentData{CarrierCode|CarrierName, ShippingMethod?, ShipperTrackingNumber?}`,
  `Item[{AmazonOrderItemCode, Quantity?}]`: one package, recorded as confirmShipment records
  it (the order SHIPPED once every unit is in a package, else PARTIALLY_SHIPPED).
Each function answers None when it applied the message, else the problem, which the
processing report gives as that message's Error; a refused message changes nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector.sandbox.amazon_shipping import apply_shipped, shipped_quantities
from connector.sandbox.clock import amazon_time, parse_time

if TYPE_CHECKING:
    from connector.sandbox.amazon import Amazon

__all__ = ["ACKNOWLEDGEMENT", "CANCEL_REASONS", "FULFILLMENT", "MESSAGE_TYPES",
           "apply_acknowledgement", "apply_fulfillment"]

ACKNOWLEDGEMENT = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
FULFILLMENT = "POST_ORDER_FULFILLMENT_DATA"
# OrderAcknowledgement.xsd CancelReason values (research notes §6).
CANCEL_REASONS = frozenset({
    "NoInventory", "ShippingAddressUndeliverable", "CustomerExchange", "BuyerCanceled",
    "GeneralAdjustment", "CarrierCreditDecision", "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure", "CustomerReturn", "MerchandiseNotReceived"})

Apply = Callable[["Amazon", "ET.Element | None"], "str | None"]


def _text(element: ET.Element | None, name: str) -> str:
    return (element.findtext(name) or "").strip() if element is not None else ""


def apply_acknowledgement(amazon: Amazon, ack: ET.Element | None) -> str | None:
    """Apply one OrderAcknowledgement; the problem text if it is an Error."""
    if ack is None:
        return "The message has no OrderAcknowledgement element"
    order_id, code = _text(ack, "AmazonOrderID"), _text(ack, "StatusCode")
    order = amazon.orders.get(order_id)
    if order is None:
        return f"AmazonOrderID {order_id!r} was not found"
    if code not in ("Success", "Failure"):
        return f"StatusCode must be Success or Failure, not {code!r}"
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    reasons: dict[str, str] = {}
    for element in ack.findall("Item"):
        item_code = _text(element, "AmazonOrderItemCode")
        if item_code not in items:
            return f"AmazonOrderItemCode {item_code!r} is not an item of order {order_id}"
        reason = _text(element, "CancelReason")
        if reason and reason not in CANCEL_REASONS:
            return f"CancelReason {reason!r} is not a valid value"
        if reason:
            reasons[item_code] = reason
    if code == "Success":
        amazon.acknowledgements.setdefault(order_id, []).append(code)
        return None
    status = order.get("fulfillment", {}).get("fulfillmentStatus")
    if status != "UNSHIPPED":
        return (f"Order {order_id} is {status}: it can only be cancelled while UNSHIPPED "
                "(a shipped order needs a return or a refund)")
    fallback = next(iter(reasons.values()), "")
    for item_code, item in items.items():
        execution: dict[str, str] = {"cancelledBy": "MERCHANT"}
        reason = reasons.get(item_code, fallback)
        if reason:
            execution["cancelReason"] = reason
        item.setdefault("cancellation", {})["cancellationExecution"] = execution
    order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
    amazon.acknowledgements.setdefault(order_id, []).append(code)
    amazon.touch(order)
    return None


def apply_fulfillment(amazon: Amazon, message: ET.Element | None) -> str | None:
    """Apply one OrderFulfillment (one package); the problem text if it is an Error."""
    if message is None:
        return "The message has no OrderFulfillment element"
    order_id = _text(message, "AmazonOrderID")
    order = amazon.orders.get(order_id)
    if order is None:
        return f"AmazonOrderID {order_id!r} was not found"
    fulfillment = order.get("fulfillment", {})
    status = fulfillment.get("fulfillmentStatus")
    if fulfillment.get("fulfilledBy") != "MERCHANT":
        return f"Order {order_id} is fulfilled by Amazon: its shipment cannot be confirmed"
    if status == "CANCELLED":
        return f"Order {order_id} is CANCELLED: a cancelled order cannot be shipped"
    if status == "SHIPPED":
        return f"Order {order_id} is already SHIPPED: every item is in a package"
    if status not in ("UNSHIPPED", "PARTIALLY_SHIPPED"):
        return f"Order {order_id} is {status}: only UNSHIPPED or PARTIALLY_SHIPPED orders ship"
    date = _text(message, "FulfillmentDate")
    if parse_time(date) is None or "T" not in date:
        return f"FulfillmentDate {date!r} is not an ISO 8601 date-time"
    data = message.find("FulfillmentData")
    carrier = _text(data, "CarrierName") or _text(data, "CarrierCode")
    if not carrier:
        return "FulfillmentData needs a CarrierCode or a CarrierName"
    lines = _lines(order, message)
    if isinstance(lines, str):
        return lines
    packages = order.setdefault("packages", [])
    package: dict[str, Any] = {
        # The feed names no package; the sandbox numbers them as confirmShipment's would be.
        "packageReferenceId": str(len(packages) + 1),
        "createdTime": amazon_time(amazon.clock.now()),
        "packageStatus": {"status": "SHIPPED", "detailedStatus": "PICKED_UP"},
        "carrier": carrier,
        "shipTime": amazon_time(parse_time(date) or amazon.clock.now()),
        "packageItems": lines,
    }
    if _text(data, "ShipperTrackingNumber"):
        package["trackingNumber"] = _text(data, "ShipperTrackingNumber")
    if _text(data, "ShippingMethod"):
        package["shippingService"] = _text(data, "ShippingMethod")
    packages.append(package)
    apply_shipped(amazon, order)
    amazon.fulfillments.setdefault(order_id, []).append(package.get("trackingNumber", ""))
    return None


def _lines(order: dict[str, Any], message: ET.Element) -> list[dict[str, Any]] | str:
    """The package's items (orderItemId, quantity: the unit count left when no Quantity is
    given), or the problem with them."""
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    shipped = shipped_quantities(order.get("packages", []))
    lines: list[dict[str, Any]] = []
    elements = message.findall("Item")
    if not elements:
        return "The message lists no Item"
    for element in elements:
        code = _text(element, "AmazonOrderItemCode")
        if code not in items:
            return f"AmazonOrderItemCode {code!r} is not an item of order {order['orderId']}"
        left = int(items[code]["quantityOrdered"]) - shipped.get(code, 0)
        given = _text(element, "Quantity")
        if given and (not given.isdigit() or int(given) <= 0):
            return f"Quantity {given!r} for AmazonOrderItemCode {code} is not a positive integer"
        quantity = int(given) if given else left
        if left <= 0:
            return f"AmazonOrderItemCode {code} is already shipped"
        if quantity > left:
            return (f"Quantity {quantity} for AmazonOrderItemCode {code} exceeds the unshipped "
                    f"quantity {left}")
        shipped[code] = shipped.get(code, 0) + quantity
        lines.append({"orderItemId": code, "quantity": quantity})
    return lines


#: Per feed type: the MessageType (and element of each Message) and what applies one.
MESSAGE_TYPES: dict[str, tuple[str, Apply]] = {
    ACKNOWLEDGEMENT: ("OrderAcknowledgement", apply_acknowledgement),
    FULFILLMENT: ("OrderFulfillment", apply_fulfillment),
}
