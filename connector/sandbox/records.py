"""Builders of the three systems' records, shaped after the official specs' examples.

Amazon: the Order of `orders_2026-01-01.json` (searchOrders/getOrder examples). VTEX: the
GetOrder example of "VTEX - Orders API.json" (fields the connector does not use are kept,
null or empty, so that the shape matches) and ReservationById. Adobe Commerce:
sales-data-order-interface, -invoice-interface and -shipment-interface.
One `Line` list describes an order's items once for all three systems: Amazon `sellerSku` =
VTEX SKU id = Commerce `sku`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connector.sandbox.clock import amazon_time, magento_time, vtex_time
from connector.sandbox.vtex import STATUS_DESCRIPTIONS
from connector.sandbox.vtex_logistics import NEVER, WAREHOUSE_ID

__all__ = [
    "PRODUCTS",
    "Buyer",
    "Line",
    "amazon_order",
    "commerce_document",
    "commerce_order",
    "vtex_order",
    "vtex_reservation",
]

MARKETPLACE = {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER",
               "marketplaceName": "Amazon.com"}
# SKU → (ASIN, title, unit price in USD)
PRODUCTS = {"SKU-1": ("B0SANDBOX1", "Sandbox espresso cup, set of 2", "24.99"),
            "SKU-2": ("B0SANDBOX2", "Sandbox pour-over kettle", "49.50"),
            "SKU-3": ("B0SANDBOX3", "Sandbox paper filters, 100 pack", "12.00")}


@dataclass(frozen=True)
class Line:
    """One order line: SKU, quantity, and Amazon's orderItemId for it."""

    sku: str
    quantity: int
    order_item_id: str

    @property
    def price(self) -> Decimal:
        """Unit price in USD (catalogue price; 10.00 for SKUs outside the catalogue)."""
        return Decimal(PRODUCTS.get(self.sku, ("", "", "10.00"))[2])

    @property
    def title(self) -> str:
        """Product title (the SKU itself outside the catalogue)."""
        return PRODUCTS.get(self.sku, ("", self.sku, ""))[1]

    @property
    def asin(self) -> str:
        """Amazon's ASIN for the SKU (a made-up, stable one outside the catalogue)."""
        return PRODUCTS.get(self.sku, (f"B0{self.sku[-8:].upper():0>8}", "", ""))[0]


@dataclass(frozen=True)
class Buyer:
    """Buyer and delivery address, the same in every system."""

    first: str
    last: str
    email: str
    street: str = "410 Terry Ave N"
    city: str = "Seattle"
    region: str = "WA"
    postcode: str = "98109"
    phone: str = "+1 206-555-0100"

    @property
    def name(self) -> str:
        """Full name, as Amazon's buyerName and VTEX's receiverName show it."""
        return f"{self.first} {self.last}"


def _product_id(sku: str) -> str:
    digits = "".join(c for c in sku if c.isdigit())
    return digits or "0"


def _money(amount: Decimal) -> dict[str, str]:
    return {"amount": f"{amount:.2f}", "currencyCode": "USD"}


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def amazon_order(order_id: str, *, status: str, fulfilled_by: str, created: datetime,
                 updated: datetime, lines: list[Line], buyer: Buyer,
                 cancelled_by: str | None = None, buyer_request: bool = False,
                 cancelled_items: int = 0) -> dict[str, Any]:
    """An Order (v2026-01-01) with every optional block present; the API trims them.

    `cancelled_by` cancels every item, or with `cancelled_items` the first ones only (an
    item-level cancellation: the order keeps its status, and its proceeds, as Amazon's
    example orders do, still count the cancelled items)."""
    total = sum((line.price * line.quantity for line in lines), Decimal(0))
    shipped = status == "SHIPPED"
    items = []
    for position, line in enumerate(lines):
        item: dict[str, Any] = {
            "orderItemId": line.order_item_id, "quantityOrdered": line.quantity, "programs": [],
            "product": {"asin": line.asin, "title": line.title,
                        "sellerSku": line.sku,
                        "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                        "price": {"unitPrice": _money(line.price)}},
            "proceeds": {"proceedsTotal": _money(line.price * line.quantity), "breakdowns": [
                {"type": "ITEM", "subtotal": _money(line.price * line.quantity)}]},
            "fulfillment": {"quantityFulfilled": line.quantity if shipped else 0,
                            "quantityUnfulfilled": 0 if shipped else line.quantity},
        }
        cancellation: dict[str, Any] = {}
        cancelled = bool(cancelled_by) and (not cancelled_items or position < cancelled_items)
        if buyer_request or (cancelled and cancelled_by == "BUYER"):
            cancellation["cancellationRequest"] = {"requester": "BUYER",
                                                   "cancelReason": "Order placed by mistake"}
        if cancelled and cancelled_by is not None:
            cancellation["cancellationExecution"] = {
                "cancelledBy": cancelled_by,
                "cancelReason": {"BUYER": "Buyer requested cancellation",
                                 "MERCHANT": "NoInventory"}.get(cancelled_by,
                                                                "Payment not authorized")}
        if cancellation:
            item["cancellation"] = cancellation
        items.append(item)
    order: dict[str, Any] = {
        "orderId": order_id, "orderAliases": [], "createdTime": amazon_time(created),
        "lastUpdatedTime": amazon_time(updated), "programs": [], "associatedOrders": [],
        "salesChannel": dict(MARKETPLACE),
        "buyer": {"buyerName": buyer.name},
        "recipient": {"deliveryAddress": {
            "name": buyer.name, "addressLine1": buyer.street, "city": buyer.city,
            "stateOrRegion": buyer.region, "postalCode": buyer.postcode, "countryCode": "US",
            "phone": buyer.phone, "addressType": "RESIDENTIAL"}},
        "proceeds": {"grandTotal": _money(total),
                     "breakdowns": [{"type": "ITEM", "subtotal": _money(total)}]},
        "fulfillment": {
            "fulfillmentStatus": status, "fulfilledBy": fulfilled_by,
            "fulfillmentServiceLevel": "STANDARD",
            "shipByWindow": {"earliestDateTime": amazon_time(created + timedelta(hours=1)),
                             "latestDateTime": amazon_time(created + timedelta(days=2))},
            "deliverByWindow": {"earliestDateTime": amazon_time(created + timedelta(days=3)),
                                "latestDateTime": amazon_time(created + timedelta(days=6))}},
        "orderItems": items,
    }
    if fulfilled_by == "MERCHANT":  # buyerEmail and packages: FBM only, per the spec
        order["buyer"]["buyerEmail"] = buyer.email
        order["packages"] = [] if not shipped else [{
            "packageReferenceId": "1", "createdTime": amazon_time(updated),
            "packageStatus": {"status": "SHIPPED", "detailedStatus": "PICKED_UP"},
            "carrier": "UPS", "shipTime": amazon_time(updated), "shippingService": "UPS Ground",
            "trackingNumber": f"1Z999AA1{order_id[-7:]}0",
            "packageItems": [{"orderItemId": line.order_item_id, "quantity": line.quantity}
                             for line in lines]}]
    return order


def vtex_order(amazon_id: str, *, status: str, sequence: int, created: datetime,
               updated: datetime, lines: list[Line], buyer: Buyer,
               affiliate: str = "AMZ") -> dict[str, Any]:
    """A GetOrder record for the Amazon order `amazon_id`, placed through `affiliate`."""
    order_id = f"{affiliate}-{amazon_id}-01"
    total = sum((_cents(line.price) * line.quantity for line in lines), 0)
    address: dict[str, Any] = {"addressType": "residential", "receiverName": buyer.name,
               "addressId": f"{order_id}-address", "versionId": None, "entityId": None,
               "postalCode": buyer.postcode, "city": buyer.city, "state": buyer.region,
               "country": "USA", "street": buyer.street, "number": None, "neighborhood": None,
               "complement": None, "reference": None, "geoCoordinates": []}
    items: list[dict[str, Any]] = [{
        "uniqueId": f"{order_id}-{index}", "id": line.sku, "productId": _product_id(line.sku),
        "ean": None, "lockId": f"00-{order_id}", "itemAttachment": {"content": {}, "name": None},
        "attachments": [], "quantity": line.quantity, "seller": "1", "name": line.title,
        "refId": line.sku, "price": _cents(line.price), "listPrice": _cents(line.price),
        "manualPrice": None, "priceTags": [], "imageUrl": None, "detailUrl": None,
        "components": [], "bundleItems": [], "params": [], "offerings": [],
        "attachmentOfferings": [], "sellerSku": line.sku, "priceValidUntil": None,
        "commission": 0, "tax": 0, "preSaleDate": None, "additionalInfo": None,
        "measurementUnit": "un", "unitMultiplier": 1.0, "sellingPrice": _cents(line.price),
        "isGift": False, "shippingPrice": None, "rewardValue": 0, "freightCommission": 0,
        "priceDefinition": {"sellingPrices": [{"value": _cents(line.price),
                                               "quantity": line.quantity}],
                            "calculatedSellingPrice": _cents(line.price),
                            "total": _cents(line.price) * line.quantity, "reason": None},
        "taxCode": None, "parentItemIndex": None, "parentAssemblyBinding": None,
        "callCenterOperator": None, "serialNumbers": None, "assemblies": [], "costPrice": None,
    } for index, line in enumerate(lines)]
    canceled = status == "canceled"
    invoiced = status == "invoiced"
    return {
        "orderId": order_id, "sequence": str(sequence), "marketplaceOrderId": amazon_id,
        "marketplaceServicesEndpoint": "http://oms.vtexinternal.com.br/api/oms?an=sandbox",
        "sellerOrderId": f"00-{order_id}", "origin": "Marketplace", "affiliateId": affiliate,
        "salesChannel": "1", "merchantName": None, "status": status,
        "workflowIsInError": False, "statusDescription": STATUS_DESCRIPTIONS.get(status, status),
        "value": total, "creationDate": vtex_time(created), "lastChange": vtex_time(updated),
        "orderGroup": order_id.rsplit("-", 1)[0], "followUpEmail": None, "lastMessage": None,
        "hostname": "sandbox", "isCompleted": True, "roundingError": 0,
        "orderFormId": f"{sequence:032x}",
        "allowCancellation": status not in ("invoiced", "canceled"), "allowEdition": False,
        "isCheckedIn": False, "authorizedDate": vtex_time(created + timedelta(minutes=1)),
        "invoicedDate": vtex_time(updated) if invoiced else None,
        "cancelReason": "Canceled by the marketplace" if canceled else None,
        "checkedInPickupPointId": None,
        "totals": [{"id": "Items", "name": "Items Total", "value": total},
                   {"id": "Discounts", "name": "Discounts Total", "value": 0},
                   {"id": "Shipping", "name": "Shipping Total", "value": 0},
                   {"id": "Tax", "name": "Tax Total", "value": 0}],
        "sellers": [{"id": "1", "name": "Sandbox Store", "logo": "",
                     "fulfillmentEndpoint": "http://fulfillment.vtexcommerce.com.br/api/"
                                            "fulfillment?an=sandbox"}],
        "clientPreferencesData": {"locale": "en-US", "optinNewsLetter": False},
        "cancellationData": None if not canceled else {
            "RequestedByUser": False, "RequestedBySystem": False,
            "RequestedBySellerNotification": True, "RequestedByPaymentNotification": False,
            "Reason": "Canceled by the marketplace", "CancellationDate": vtex_time(updated)},
        "cancellationRequests": None, "taxData": None, "subscriptionData": None,
        "itemMetadata": {"Items": [{"Id": line.sku, "Seller": "1", "Name": line.title,
                                    "SkuName": line.title, "ProductId": _product_id(line.sku),
                                    "RefId": line.sku, "Ean": None, "ImageUrl": None,
                                    "DetailUrl": None, "AssemblyOptions": []}
                                   for line in lines]},
        "marketplace": {"baseURL": "http://oms.vtexinternal.com.br/api/oms?an=sandbox",
                        "isCertified": None, "name": affiliate},
        "storePreferencesData": {"countryCode": "USA", "currencyCode": "USD",
                                 "currencyFormatInfo": {
                                     "CurrencyDecimalDigits": 2, "CurrencyDecimalSeparator": ".",
                                     "CurrencyGroupSeparator": ",", "CurrencyGroupSize": 3,
                                     "StartsWithCurrencySymbol": True},
                                 "currencyLocale": 1033, "currencySymbol": "$",
                                 "timeZone": "Pacific Standard Time"},
        "customData": None, "commercialConditionData": None, "openTextField": None,
        "invoiceData": None, "changesAttachment": None, "callCenterOperatorData": None,
        "packageAttachment": {"packages": [] if not invoiced else [{
            "items": [{"itemIndex": i, "quantity": line.quantity, "price": _cents(line.price),
                       "description": None, "unitMultiplier": 1.0}
                      for i, line in enumerate(lines)],
            "courier": "UPS", "invoiceNumber": f"NF-{sequence}", "invoiceValue": total,
            "invoiceUrl": None, "issuanceDate": vtex_time(updated), "trackingNumber": None,
            "invoiceKey": None, "trackingUrl": None, "embeddedInvoice": None, "type": "Output",
            "courierStatus": None, "cfop": None, "restitutions": {}, "volumes": None,
            "EnableInferItems": None}]},
        "paymentData": {"transactions": [{
            "isActive": True, "transactionId": f"{sequence:032X}", "merchantName": "SANDBOX",
            "payments": [{"id": f"{sequence:032X}"[::-1], "paymentSystem": "0",
                          "paymentSystemName": "Amazon Marketplace", "value": total,
                          "installments": 1, "referenceValue": total, "group": "promissory"}]}],
            "giftCards": []},
        "shippingData": {
            "id": "shippingData", "address": address, "trackingHints": None,
            "selectedAddresses": [address],
            "logisticsInfo": [{
                "itemIndex": index, "selectedSla": "Normal", "lockTTL": "10d", "price": 0,
                "listPrice": 0, "sellingPrice": 0, "deliveryWindow": None,
                "deliveryCompany": "Sandbox Carrier", "shippingEstimate": "5bd",
                "shippingEstimateDate": vtex_time(created + timedelta(days=5)),
                "deliveryChannel": "delivery", "addressId": address["addressId"],
                "deliveryIds": [{"courierId": "1", "warehouseId": WAREHOUSE_ID, "dockId": "1",
                                 "courierName": "Sandbox Carrier", "quantity": line.quantity}],
            } for index, line in enumerate(lines)]},
        "ratesAndBenefitsData": {"id": "ratesAndBenefitsData", "rateAndBenefitsIdentifiers": []},
        "marketingData": None, "giftRegistryData": None,
        "clientProfileData": {
            "id": "clientProfileData", "email": buyer.email, "firstName": buyer.first,
            "lastName": buyer.last, "documentType": None, "document": None,
            "phone": buyer.phone, "corporateName": None, "tradeName": None,
            "corporateDocument": None, "stateInscription": None, "corporatePhone": None,
            "isCorporate": False, "userProfileId": None, "userProfileVersion": None,
            "customerClass": None, "customerCode": None},
        "items": items, "marketplaceItems": [],
    }


def vtex_reservation(lock_id: str, *, created: datetime, lines: list[Line], status: int,
                     buyer: Buyer) -> dict[str, Any]:
    """A ReservationById record holding `lines` in the sandbox warehouse."""
    return {
        "LastUpdateDateUtc": vtex_time(created), "SalesChannel": "1", "LockId": lock_id,
        "ReservationDateUtc": vtex_time(created),
        "MaximumConfirmationDateUtc": vtex_time(created + timedelta(days=10)), "Status": status,
        "SlaRequest": [{
            "item": {"id": line.sku, "groupItemId": None, "quantity": line.quantity,
                     "price": float(line.price), "modal": None,
                     "additionalHandlingTime": "00:00:00",
                     "dimension": {"weight": 1.0, "height": 10.0, "width": 10.0,
                                   "length": 10.0, "maxSumDimension": 0.0},
                     "kitItem": [], "unlimitedQuantity": False},
            "slaType": "Normal", "slaTypeName": "Normal", "freightTableName": None,
            "freightTableId": None, "listPrice": 0.0, "promotionalPrice": 0.0,
            "transitTime": "3.00:00:00", "dockTime": "00:00:00",
            "timeToDockPlusDockTime": "00:00:00", "totalTime": "3.00:00:00",
            "deliveryWindows": None, "wareHouseId": WAREHOUSE_ID, "dockId": "1",
            "wmsEndPoint": None,
            "location": {"zipCode": buyer.postcode, "country": "USA", "deliveryPointId": None,
                         "point": None, "inStore": {"IsCheckedIn": False, "StoreId": None}},
            "pickupStoreInfo": None} for line in lines],
        "PickupPointItemOptions": None, "CanceledDateUtc": NEVER,
        "AuthorizedDateUtc": vtex_time(created),
        "ConfirmedDateUtc": vtex_time(created) if status == 2 else NEVER,
        "Errors": [], "IsSucess": True,
    }


def commerce_order(amazon_id: str, *, entity_id: int, first_item_id: int, state: str,
                   created: datetime, updated: datetime, lines: list[Line], buyer: Buyer,
                   invoiced: bool = False, shipped: bool = False,
                   canceled: bool = False) -> dict[str, Any]:
    """An OrderInterface as the Amazon Sales Channel imports it (increment_id = Amazon id)."""
    total = float(sum((line.price * line.quantity for line in lines), Decimal(0)))
    status = {"new": "pending"}.get(state, state)
    stamp_created, stamp_updated = magento_time(created), magento_time(updated)
    address: dict[str, Any] = {"address_type": "billing", "city": buyer.city, "country_id": "US",
               "email": buyer.email, "firstname": buyer.first, "lastname": buyer.last,
               "postcode": buyer.postcode, "region": buyer.region, "region_code": buyer.region,
               "street": [buyer.street], "telephone": buyer.phone,
               "entity_id": entity_id, "parent_id": entity_id}
    items: list[dict[str, Any]] = []
    for offset, line in enumerate(lines):
        price = float(line.price)
        items.append({
            "item_id": first_item_id + offset, "order_id": entity_id, "sku": line.sku,
            "name": line.title, "product_type": "simple", "product_id": int(_product_id(line.sku)),
            "qty_ordered": line.quantity, "qty_invoiced": line.quantity if invoiced else 0,
            "qty_shipped": line.quantity if shipped else 0, "qty_refunded": 0,
            "qty_canceled": line.quantity if canceled else 0, "price": price,
            "base_price": price, "original_price": price, "price_incl_tax": price,
            "row_total": price * line.quantity, "base_row_total": price * line.quantity,
            "row_total_incl_tax": price * line.quantity, "tax_amount": 0, "discount_amount": 0,
            "is_virtual": 0, "weight": 1, "store_id": 1, "created_at": stamp_created,
            "updated_at": stamp_updated})
    paid = total if invoiced else 0
    return {
        "entity_id": entity_id, "increment_id": amazon_id, "ext_order_id": amazon_id,
        "store_id": 1, "store_name": "Main Website\nMain Website Store\nDefault Store View",
        "state": state, "status": status, "created_at": stamp_created,
        "updated_at": stamp_updated, "customer_email": buyer.email,
        "customer_firstname": buyer.first, "customer_lastname": buyer.last,
        "customer_is_guest": 1, "customer_group_id": 0, "base_currency_code": "USD",
        "order_currency_code": "USD", "global_currency_code": "USD",
        "store_currency_code": "USD", "grand_total": total, "base_grand_total": total,
        "subtotal": total, "base_subtotal": total, "shipping_amount": 0,
        "base_shipping_amount": 0, "tax_amount": 0, "base_tax_amount": 0,
        "discount_amount": 0, "total_qty_ordered": sum(line.quantity for line in lines),
        "total_item_count": len(lines), "total_invoiced": paid, "base_total_invoiced": paid,
        "total_paid": paid, "base_total_paid": paid, "total_due": total - paid,
        "total_refunded": 0, "total_canceled": total if canceled else 0, "is_virtual": 0,
        "shipping_description": "Amazon Shipping - Standard", "items": items,
        "billing_address": address, "billing_address_id": entity_id,
        "payment": {"entity_id": entity_id, "parent_id": entity_id, "method": "checkmo",
                    "account_status": None, "additional_information": ["Amazon Marketplace"],
                    "cc_last4": None, "po_number": amazon_id, "amount_ordered": total,
                    "base_amount_ordered": total, "amount_paid": paid},
        "status_histories": [],
        "extension_attributes": {"shipping_assignments": [{"shipping": {
            "address": {**address, "address_type": "shipping"},
            "method": "amazonshipping_amazonshipping", "total": {"shipping_amount": 0}},
            "items": [dict(item) for item in items]}]},
    }


def commerce_document(kind: str, entity_id: int, order: dict[str, Any], *,
                      first_item_id: int, track: tuple[str, str, str] | None = None
                      ) -> dict[str, Any]:
    """An invoice or shipment covering every item of `order` (seeded history)."""
    lines = [{"entity_id": first_item_id + n, "parent_id": entity_id,
              "order_item_id": item["item_id"], "sku": item["sku"], "name": item["name"],
              "product_id": item["product_id"], "qty": item["qty_ordered"],
              "price": item["price"], "row_total": item["row_total"]}
             for n, item in enumerate(order["items"])]
    document: dict[str, Any] = {
        "entity_id": entity_id, "increment_id": f"{entity_id:09d}",
        "order_id": order["entity_id"], "store_id": 1,
        "total_qty": sum(item["qty_ordered"] for item in order["items"]),
        "created_at": order["updated_at"], "updated_at": order["updated_at"],
        "items": lines, "comments": []}
    if kind == "invoice":
        document.update(state=2, grand_total=order["grand_total"],
                        base_grand_total=order["grand_total"], subtotal=order["subtotal"],
                        order_currency_code="USD", base_currency_code="USD")
    else:
        number, title, carrier = track or ("", "", "")
        document.update(email_sent=0, packages=[], customer_id=None, billing_address_id=order[
            "entity_id"], tracks=[] if track is None else [{
                "entity_id": entity_id, "order_id": order["entity_id"], "parent_id": entity_id,
                "track_number": number, "title": title, "carrier_code": carrier,
                "created_at": order["updated_at"], "updated_at": order["updated_at"],
                "weight": None, "qty": None, "description": None}])
    return document
