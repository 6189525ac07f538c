"""confirmShipment (Orders v0): validate a ConfirmShipmentRequest and record the package.

Rules (research notes §5 and §11): only merchant-fulfilled orders that are UNSHIPPED or
PARTIALLY_SHIPPED; a SHIPPED order accepts an edit of an existing package (same
packageReferenceId), otherwise "PackageToUpdateNotFound"; `packageReferenceId` must be a JSON
string holding a positive number (strict since January 2026). The order becomes SHIPPED when
every unit is in a package, else PARTIALLY_SHIPPED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connector.sandbox.clock import amazon_time, parse_time
from connector.sandbox.errors import amazon_error
from connector.sandbox.server import Request, Response

if TYPE_CHECKING:
    from connector.sandbox.amazon import Amazon

__all__ = ["apply_shipped", "confirm_shipment", "shipped_quantities"]


def confirm_shipment(amazon: Amazon, request: Request) -> Response:
    """confirmShipment (v0): validate ConfirmShipmentRequest, record the package."""
    order = amazon.orders.get(request.params["orderId"])
    if order is None:
        return amazon_error(404, "NotFound", "The requested order was not found.")
    try:
        body = request.json()
    except ValueError:
        return _shipment_error("The request body is not valid JSON")
    problem = _check_confirmation(body, order)
    if problem:
        return _shipment_error(problem)
    detail = body["packageDetail"]
    fulfillment = order.get("fulfillment", {})
    status = fulfillment.get("fulfillmentStatus")
    if fulfillment.get("fulfilledBy") != "MERCHANT":
        return _shipment_error("Shipments of orders fulfilled by Amazon cannot be confirmed")
    packages = order.setdefault("packages", [])
    existing = next((p for p in packages
                     if p["packageReferenceId"] == detail["packageReferenceId"]), None)
    if status == "SHIPPED" and existing is None:
        return _shipment_error("PackageToUpdateNotFound: the order is already shipped and "
                               "has no package with this packageReferenceId")
    if status not in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"):
        return _shipment_error(f"The order is {status}; only UNSHIPPED or PARTIALLY_SHIPPED "
                               "orders can be confirmed")
    shipped = shipped_quantities(p for p in packages if p is not existing)
    for line in detail["orderItems"]:
        item = next(i for i in order["orderItems"] if i["orderItemId"] == line["orderItemId"])
        already = shipped.get(line["orderItemId"], 0)
        if already + line["quantity"] > item["quantityOrdered"]:
            return _shipment_error(f"quantity {line['quantity']} for orderItemId "
                                   f"{line['orderItemId']} exceeds the unshipped quantity "
                                   f"{item['quantityOrdered'] - already}")
    package = {
        "packageReferenceId": detail["packageReferenceId"],
        "createdTime": amazon_time(amazon.clock.now()),
        "packageStatus": {"status": "SHIPPED", "detailedStatus": "PICKED_UP"},
        "carrier": detail.get("carrierName") or detail["carrierCode"],
        "shipTime": amazon_time(parse_time(detail["shipDate"]) or amazon.clock.now()),
        "trackingNumber": detail["trackingNumber"],
        "packageItems": [{k: v for k, v in line.items()
                          if k in ("orderItemId", "quantity", "transparencyCodes")}
                         for line in detail["orderItems"]],
    }
    if detail.get("shippingMethod"):
        package["shippingService"] = detail["shippingMethod"]
    if existing is not None:
        packages[packages.index(existing)] = package
    else:
        packages.append(package)
    apply_shipped(amazon, order)
    return Response.empty(204)


def apply_shipped(amazon: Amazon, order: dict[str, Any]) -> None:
    """The items' fulfilled quantities and the order's status from its packages (shared with
    the fulfillment feed, so both routes leave an order alike)."""
    shipped = shipped_quantities(order.get("packages", []))
    done = True
    for item in order["orderItems"]:
        count = min(shipped.get(item["orderItemId"], 0), item["quantityOrdered"])
        item.setdefault("fulfillment", {}).update(
            quantityFulfilled=count, quantityUnfulfilled=item["quantityOrdered"] - count)
        done = done and count >= item["quantityOrdered"]
    order["fulfillment"]["fulfillmentStatus"] = "SHIPPED" if done else "PARTIALLY_SHIPPED"
    amazon.touch(order)


def _shipment_error(message: str) -> Response:
    # The spec's own 400 example spells the code "Invalid Input" for this operation.
    return amazon_error(400, "Invalid Input", "Invalid Input", message)


def shipped_quantities(packages: Any) -> dict[str, int]:
    """Units in packages so far, per orderItemId."""
    totals: dict[str, int] = {}
    for package in packages:
        for line in package.get("packageItems", []):
            totals[line["orderItemId"]] = totals.get(line["orderItemId"], 0) + line["quantity"]
    return totals


def _check_confirmation(body: Any, order: dict[str, Any]) -> str | None:
    """The first problem of a ConfirmShipmentRequest body, or None."""
    if not isinstance(body, dict):
        return "The request body must be a ConfirmShipmentRequest object"
    if not isinstance(body.get("marketplaceId"), str):
        return "marketplaceId is required"
    if body["marketplaceId"] != order["salesChannel"].get("marketplaceId"):
        return f"marketplaceId {body['marketplaceId']} is not the order's marketplace"
    detail = body.get("packageDetail")
    if not isinstance(detail, dict):
        return "packageDetail is required"
    for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate"):
        if name not in detail:
            return f"packageDetail.{name} is required"
        if not isinstance(detail[name], str) or not detail[name]:
            return f"packageDetail.{name} must be a non-empty string"
    if not detail["packageReferenceId"].isdigit() or int(detail["packageReferenceId"]) <= 0:
        return "packageDetail.packageReferenceId must be a string holding a positive number"
    if detail["carrierCode"] == "Other" and not detail.get("carrierName"):
        return "packageDetail.carrierName is required when carrierCode is Other"
    if parse_time(detail["shipDate"]) is None or "T" not in detail["shipDate"]:
        return "packageDetail.shipDate must be an ISO 8601 date-time"
    lines = detail.get("orderItems")
    if not isinstance(lines, list) or not lines:
        return "packageDetail.orderItems must list at least one item"
    known = {item["orderItemId"] for item in order["orderItems"]}
    for line in lines:
        if not isinstance(line, dict) or not isinstance(line.get("orderItemId"), str):
            return "each orderItems entry needs an orderItemId string"
        if line["orderItemId"] not in known:
            return f"orderItemId {line['orderItemId']} is not an item of this order"
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
            return "each orderItems entry needs a positive integer quantity"
    return None
