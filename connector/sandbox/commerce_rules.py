"""Magento's order state rules, as plain functions over OrderInterface-shaped dicts.

Transcribed from the behaviour the research notes cite (Sales `Order::canCancel/canInvoice/
canShip/canCreditmemo`, `Order\\Item::getQtyTo*`, the state handler that moves orders to
complete or closed). Quantities are what decide, as in Magento; money only follows.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_STATUS",
    "can_cancel",
    "can_creditmemo",
    "can_hold",
    "can_invoice",
    "can_ship",
    "number",
    "qty",
    "qty_to_cancel",
    "qty_to_invoice",
    "qty_to_refund",
    "qty_to_ship",
    "resolve_state",
    "set_state",
]

DEFAULT_STATUS = {"new": "pending", "pending_payment": "pending_payment",
                  "processing": "processing", "complete": "complete", "closed": "closed",
                  "canceled": "canceled", "holded": "holded", "payment_review": "payment_review"}
BLOCKED = frozenset({"holded", "payment_review"})


def number(value: float) -> float | int:
    """Whole numbers as ints, so that JSON shows `2` rather than `2.0`."""
    return int(value) if float(value).is_integer() else value


def qty(item: dict[str, Any], name: str) -> float:
    """A quantity field of an order item (missing or null = 0)."""
    return float(item.get(name) or 0)


def qty_to_invoice(item: dict[str, Any]) -> float:
    """Ordered, not yet invoiced or canceled."""
    return max(qty(item, "qty_ordered") - qty(item, "qty_invoiced") - qty(item, "qty_canceled"),
               0.0)


def qty_to_ship(item: dict[str, Any]) -> float:
    """Ordered, not yet shipped, refunded or canceled."""
    left = (qty(item, "qty_ordered") - qty(item, "qty_shipped") - qty(item, "qty_refunded")
            - qty(item, "qty_canceled"))
    return max(left, 0.0)


def qty_to_refund(item: dict[str, Any]) -> float:
    """Invoiced, not yet refunded."""
    return max(qty(item, "qty_invoiced") - qty(item, "qty_refunded"), 0.0)


def qty_to_cancel(item: dict[str, Any]) -> float:
    """What `cancel` takes away: neither invoiced nor shipped."""
    return max(min(qty_to_invoice(item), qty_to_ship(item)), 0.0)


def _items(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in order.get("items") or [] if not i.get("parent_item_id")]


def can_invoice(order: dict[str, Any]) -> bool:
    """Not held, in review, canceled, complete or closed, and something left to invoice."""
    if order.get("state") in BLOCKED | {"canceled", "complete", "closed"}:
        return False
    return any(qty_to_invoice(i) > 0 for i in _items(order))


def can_ship(order: dict[str, Any]) -> bool:
    """Not held, in review or canceled, not virtual, and something left to ship."""
    if order.get("state") in BLOCKED | {"canceled"} or order.get("is_virtual"):
        return False
    return any(qty_to_ship(i) > 0 and not i.get("is_virtual") for i in _items(order))


def can_cancel(order: dict[str, Any]) -> bool:
    """Magento's canCancel: false when held, in review, canceled, complete, closed, or when
    every item is already invoiced (a fully invoiced order must be refunded instead)."""
    if order.get("state") in BLOCKED | {"canceled", "complete", "closed"}:
        return False
    return not all(qty_to_invoice(i) <= 0 for i in _items(order))


def can_creditmemo(order: dict[str, Any]) -> bool:
    """Something invoiced is not refunded, and the order is not held/in review/canceled/closed."""
    if order.get("state") in BLOCKED | {"canceled", "closed"}:
        return False
    return any(qty_to_refund(i) > 0 for i in _items(order))


def can_hold(order: dict[str, Any]) -> bool:
    """Hold is possible unless canceled, in review, complete, closed or already held."""
    return order.get("state") not in BLOCKED | {"canceled", "complete", "closed"}


def set_state(order: dict[str, Any], state: str) -> None:
    """Set state and its default status (Magento's protected states are set this way too)."""
    order["state"] = state
    order["status"] = DEFAULT_STATUS.get(state, state)


def resolve_state(order: dict[str, Any]) -> None:
    """After an invoice, shipment or credit memo: new → processing, then complete or closed.

    Complete = nothing left to invoice or ship; closed = additionally nothing left to refund
    (fully refunded), as Magento's order state handler decides.
    """
    state = str(order.get("state") or "new")
    if state in BLOCKED | {"canceled", "closed"}:
        return
    touched = any(qty(i, "qty_invoiced") or qty(i, "qty_shipped") for i in _items(order))
    if state in ("new", "pending_payment") and touched:
        state = "processing"
    if not can_invoice({**order, "state": state}):
        if state in ("processing", "complete") and not can_creditmemo(order) and not can_ship(
                order):
            state = "closed"
        elif state == "processing" and not can_ship(order):
            state = "complete"
    if state != order.get("state"):
        set_state(order, state)
