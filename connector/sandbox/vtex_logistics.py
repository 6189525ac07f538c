"""VTEX Logistics simulator: reservations (create, get, cancel, confirm, acknowledge) and stock.

Shapes follow "VTEX - Logistics API.json" (CreateReservation's request and response,
ReservationById, InventoryBySku). Each reservation holds `reservedQuantity` in the SKU's
warehouse balance until it is canceled (Status 5, Canceled_Manually), aborted with its order
(3), or expires unconfirmed (4), so tests can assert that stock was released.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from connector.sandbox.clock import Clock, parse_time, vtex_time
from connector.sandbox.errors import vtex_error
from connector.sandbox.server import HttpError, Request, Response, Route, route

__all__ = ["WAREHOUSE_ID", "VtexLogistics"]

WAREHOUSE_ID = "1_1"
NEVER = "0001-01-01T00:00:00+00:00"
ACTIVE = (0, 1, 2)
_REQUIRED = {
    "": ("salesChannel", "lockId", "autorizationExpirationTTL", "deliveryItemOptions"),
    "option": ("item", "slaType", "slaTypeName", "listPrice", "promotionalPrice",
               "transitTime", "dockTime", "timeToDockPlusDockTime", "aditionalTimeBlockedDays",
               "totalTime", "deliveryWindows", "wareHouseId", "dockId", "location"),
    "item": ("id", "quantity", "kitItem", "price", "additionalHandlingTime", "dimension"),
    "dimension": ("weight", "height", "width", "length"),
    "location": ("zipCode", "country", "inStore"),
    "inStore": ("IsCheckedIn", "StoreId"),
}
_DURATION = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")


def _bad(message: str) -> HttpError:
    return HttpError(vtex_error(400, "400", message))


def _duration(text: Any) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise _bad(f"autorizationExpirationTTL {text!r} is not in the format DD.HH:MM:SS")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _missing(body: dict[str, Any]) -> list[str]:
    """Every required field of CreateReservation that the body lacks, as dotted paths."""
    missing = [k for k in _REQUIRED[""] if k not in body]
    options = body.get("deliveryItemOptions")
    for i, option in enumerate(options if isinstance(options, list) else []):
        where = f"deliveryItemOptions[{i}]"
        if not isinstance(option, dict):
            missing.append(where)
            continue
        missing += [f"{where}.{k}" for k in _REQUIRED["option"] if k not in option]
        for key, inner in (("item", "dimension"), ("location", "inStore")):
            part = option.get(key)
            if isinstance(part, dict):
                missing += [f"{where}.{key}.{k}" for k in _REQUIRED[key] if k not in part]
                sub = part.get(inner)
                if isinstance(sub, dict):
                    missing += [f"{where}.{key}.{inner}.{k}" for k in _REQUIRED[inner]
                                if k not in sub]
    return missing


class VtexLogistics:
    """Reservations by LockId and stock balances by SKU."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reservations: dict[str, dict[str, Any]] = {}
        self.inventory: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[Route]:
        """Logistics operations, mounted under /vtex with the OMS auth."""
        base = "/api/logistics/pvt/inventory/reservations"
        return [
            route("POST", base, self.create, "CreateReservation"),
            route("GET", base + "/{reservationId}", self.get, "ReservationById"),
            route("POST", base + "/{reservationId}/cancel", self.cancel, "CancelReservation"),
            route("POST", base + "/{reservationId}/confirm", self.confirm,
                  "ConfirmReservation"),
            route("POST", base + "/{reservationId}/acknowledge", self.acknowledge,
                  "AcknowledgmentReservation"),
            route("GET", "/api/logistics/pvt/inventory/skus/{skuId}", self.stock,
                  "InventoryBySku"),
        ]

    # -- stock --------------------------------------------------------------------------
    def set_stock(self, sku_id: str, quantity: int, warehouse_id: str = WAREHOUSE_ID) -> None:
        """Set a SKU's total quantity in a warehouse (creating the balance entry)."""
        self.inventory.setdefault(sku_id, {"skuId": sku_id, "balance": []})
        entry = self._balance(sku_id, warehouse_id, create=True)
        assert entry is not None
        entry["totalQuantity"] = quantity

    def _balance(self, sku_id: str, warehouse_id: str | None,
                 create: bool = False) -> dict[str, Any] | None:
        record = self.inventory.get(sku_id)
        if record is None:
            return None
        for entry in record["balance"]:
            if warehouse_id is None or entry["warehouseId"] == warehouse_id:
                return entry
        if not create or warehouse_id is None:
            return None
        entry = {"warehouseId": warehouse_id, "warehouseName": f"Warehouse {warehouse_id}",
                 "totalQuantity": 0, "reservedQuantity": 0, "hasUnlimitedQuantity": False,
                 "timeToRefill": None, "dateOfSupplyUtc": None, "leadTime": "00:00:00"}
        record["balance"].append(entry)
        return entry

    def _hold(self, reservation: dict[str, Any], sign: int) -> None:
        for sla in reservation["SlaRequest"]:
            entry = self._balance(sla["item"]["id"], sla.get("wareHouseId"))
            if entry is not None:
                entry["reservedQuantity"] = max(
                    0, entry["reservedQuantity"] + sign * int(sla["item"]["quantity"]))

    def stock(self, request: Request) -> Response:
        """InventoryBySku: `{skuId, balance[]}`."""
        record = self.inventory.get(request.params["skuId"])
        if record is None:
            return vtex_error(404, "404", f"SKU {request.params['skuId']} not found")
        return Response.json(200, record)

    # -- reservations -------------------------------------------------------------------
    def _get(self, request: Request) -> dict[str, Any]:
        reservation = self.reservations.get(request.params["reservationId"])
        if reservation is None:
            raise HttpError(vtex_error(404, "404", f"Reservation "
                                       f"{request.params['reservationId']} not found"))
        self._expire(reservation)
        return reservation

    def _expire(self, reservation: dict[str, Any]) -> None:
        deadline = parse_time(reservation["MaximumConfirmationDateUtc"])
        if reservation["Status"] in (0, 1) and deadline and deadline < self.clock.now():
            self._finish(reservation, 4)

    def _finish(self, reservation: dict[str, Any], status: int) -> None:
        now = vtex_time(self.clock.now())
        if reservation["Status"] in ACTIVE:
            self._hold(reservation, -1)
            reservation["CanceledDateUtc"] = now
        reservation["Status"] = status
        reservation["LastUpdateDateUtc"] = now

    def release(self, lock_id: str, status: int = 5) -> bool:
        """End an active reservation (5 manually, 3 with its order); False if none."""
        reservation = self.reservations.get(lock_id)
        if reservation is None or reservation["Status"] not in ACTIVE:
            return False
        self._finish(reservation, status)
        return True

    def create(self, request: Request) -> Response:
        """CreateReservation: validate the body per spec, reserve stock, Status 1."""
        try:
            body = request.json()
        except ValueError:
            raise _bad("The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _bad("The request body must be a reservation object")
        missing = _missing(body)
        if missing:
            raise _bad(f"Missing required field(s): {', '.join(missing)}")
        options = body["deliveryItemOptions"]
        if not isinstance(options, list) or not options:
            raise _bad("deliveryItemOptions must list at least one item")
        lock_id = body["lockId"] or str(uuid.uuid4())
        existing = self.reservations.get(str(lock_id))
        if existing is not None:
            return Response.json(200, existing)
        requests = []
        for option in options:
            item = option["item"]
            quantity = item["quantity"]
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                raise _bad("item.quantity must be a positive integer")
            entry = self._balance(str(item["id"]), option["wareHouseId"])
            if entry is None:
                raise _bad(f"SKU {item['id']} has no inventory in warehouse "
                           f"{option['wareHouseId']}")
            requests.append(_sla(option, entry["warehouseId"]))
        now = self.clock.now()
        reservation: dict[str, Any] = {
            "LastUpdateDateUtc": vtex_time(now), "SalesChannel": str(body["salesChannel"]),
            "LockId": str(lock_id), "ReservationDateUtc": vtex_time(now),
            "MaximumConfirmationDateUtc": vtex_time(
                now + _duration(body["autorizationExpirationTTL"])),
            "Status": 1, "SlaRequest": requests, "PickupPointItemOptions": None,
            "CanceledDateUtc": NEVER, "AuthorizedDateUtc": vtex_time(now),
            "ConfirmedDateUtc": NEVER, "Errors": [], "IsSucess": True,
        }
        self.reservations[str(lock_id)] = reservation
        self._hold(reservation, +1)
        return Response.json(200, reservation)

    def get(self, request: Request) -> Response:
        """ReservationById."""
        return Response.json(200, self._get(request))

    def cancel(self, request: Request) -> Response:
        """CancelReservation: Status 5 (Canceled_Manually), stock released; idempotent."""
        reservation = self._get(request)
        if reservation["Status"] in ACTIVE:
            self._finish(reservation, 5)
        return Response.empty(200)

    def confirm(self, request: Request) -> Response:
        """ConfirmReservation: Status 2; refused once the reservation was canceled."""
        reservation = self._get(request)
        if reservation["Status"] not in ACTIVE:
            raise _bad(f"Reservation {reservation['LockId']} is canceled "
                       f"(Status {reservation['Status']})")
        if reservation["Status"] != 2:
            now = vtex_time(self.clock.now())
            reservation.update(Status=2, ConfirmedDateUtc=now, LastUpdateDateUtc=now)
        return Response.empty(200)

    def acknowledge(self, request: Request) -> Response:
        """AcknowledgmentReservation: accepted for an existing reservation; no visible change."""
        reservation = self._get(request)
        reservation["LastUpdateDateUtc"] = vtex_time(self.clock.now())
        return Response.empty(200)


def _sla(option: dict[str, Any], warehouse_id: str) -> dict[str, Any]:
    """A SlaRequest entry of the reservation, from one deliveryItemOptions entry."""
    item = option["item"]
    windows = option.get("deliveryWindows")
    window = windows[0] if isinstance(windows, list) and windows else windows or None
    location = option["location"]
    return {
        "item": {"id": str(item["id"]), "groupItemId": None, "quantity": item["quantity"],
                 "price": item["price"], "modal": item.get("modal"),
                 "additionalHandlingTime": item["additionalHandlingTime"],
                 "dimension": dict(item["dimension"]), "kitItem": item["kitItem"],
                 "unlimitedQuantity": False},
        "slaType": option["slaType"], "slaTypeName": option["slaTypeName"],
        "freightTableName": None, "freightTableId": None,
        "listPrice": option["listPrice"], "promotionalPrice": option["promotionalPrice"],
        "transitTime": option["transitTime"], "dockTime": option["dockTime"],
        "timeToDockPlusDockTime": option["timeToDockPlusDockTime"],
        "totalTime": option["totalTime"], "deliveryWindows": window,
        "wareHouseId": warehouse_id, "dockId": option["dockId"], "wmsEndPoint": None,
        "location": {"zipCode": location["zipCode"], "country": location["country"],
                     "deliveryPointId": None, "point": None, "inStore": location["inStore"]},
        "pickupStoreInfo": None,
    }
