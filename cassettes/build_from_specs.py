"""Build the spec cassettes (`cassettes/spec-*.yaml`) from the official API descriptions.

    python cassettes/build_from_specs.py [SPECS_DIR]    # default: ../shared/specs beside the repo

Walmart's cassettes are built by `spec_walmart.py` and `spec_walmart_mx.py` (México) (their
examples, unchanged). Every Amazon and
VTEX interaction is an official example, unchanged: SP-API's
`x-amzn-api-sandbox` static cases (the request parameters and the answer Amazon's static sandbox
gives for them; the host is that sandbox's) and the VTEX specs' request and response examples.
The Adobe Commerce admin schema has no examples at all, so its records are the smallest the
definitions allow (their `required` fields) plus the fields the shipped mapping reads, every key
checked here to be a property of its definition; requests carry the required fields only.
Those interactions are marked `minimal` in the metadata.

Each cassette's `metadata.operations` lists, per operation, what the spec allows a request to
carry: method, path template (base path included), query parameters (with their enums) and body
field paths (`a.b`, `a[].b`; `a.*` for a free-form object) with the required ones. The tests
check the shipped mappings' requests against that offline: the CI needs neither network nor
the specs, only this folder. Re-run after the specs change; the output is deterministic.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from vcr.serializers import yamlserializer

HERE = Path(__file__).resolve().parent
DEFAULT_SPECS = HERE.parent.parent / "shared" / "specs"
AMAZON_SANDBOX = "https://sandbox.sellingpartnerapi-na.amazon.com"
VTEX_EXAMPLES = "https://apiexamples.vtexcommercestable.com.br"
MAX_DEPTH = 8


class Spec:
    """One OpenAPI 2 or 3 document: its operations and its schemas' field paths."""

    def __init__(self, path: Path, name: str) -> None:
        text = path.read_text()
        self.doc: dict[str, Any] = (json.loads(text) if path.suffix == ".json"
                                    else yaml.safe_load(text))
        self.name = name
        self.base_path = str(self.doc.get("basePath") or "").rstrip("/")

    def resolve(self, node: Mapping[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in str(node["$ref"]).lstrip("#/").split("/"):
                target = target[part]
            node = target
        return dict(node)

    def operation(self, path: str, method: str) -> dict[str, Any]:
        return dict(self.doc["paths"][path][method.lower()])

    def _merged(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        merged = self.resolve(schema)
        for part in merged.pop("allOf", []):
            sub = self._merged(part)
            merged.setdefault("properties", {}).update(sub.get("properties", {}))
            merged["required"] = [*merged.get("required", []), *sub.get("required", [])]
        return merged

    def fields(self, schema: Mapping[str, Any], prefix: str = "", required: bool = True,
               depth: int = 0) -> tuple[set[str], set[str]]:
        """Every field path of a schema, and those required (under required parents)."""
        if depth > MAX_DEPTH:
            return ({f"{prefix}.*"} if prefix else set()), set()
        node = self._merged(schema)
        if node.get("type") == "array" or "items" in node:
            return self.fields(node.get("items", {}), prefix + "[]", required, depth + 1)
        properties = node.get("properties") or {}
        if not properties:
            free = node.get("type") == "object" or "additionalProperties" in node
            return ({f"{prefix}.*"} if free and prefix else set()), set()
        wanted = set(node.get("required") or [])
        paths: set[str] = set()
        needed: set[str] = set()
        for name, sub in properties.items():
            path = f"{prefix}.{name}" if prefix else name
            paths.add(path)
            if required and name in wanted:
                needed.add(path)
            more, more_needed = self.fields(sub, path, required and name in wanted, depth + 1)
            paths |= more
            needed |= more_needed
        return paths, needed

    def body_schema(self, op: Mapping[str, Any]) -> dict[str, Any] | None:
        for param in op.get("parameters", []):
            param = self.resolve(param)
            if param.get("in") == "body":
                return dict(param["schema"])
        content = self.resolve(op.get("requestBody", {})).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return dict(schema) if schema else None

    def describe(self, path: str, method: str) -> dict[str, Any]:
        """What a request of this operation may carry (the tests' reference)."""
        op = self.operation(path, method)
        query: dict[str, Any] = {}
        for param in op.get("parameters", []):
            param = self.resolve(param)
            if param.get("in") == "query":
                items = param.get("items") or param.get("schema", {}).get("items") or {}
                enum = items.get("enum") or param.get("enum") or param.get("schema", {}).get("enum")
                query[param["name"]] = {"enum": list(enum)} if enum else {}
        described: dict[str, Any] = {"operation": op.get("operationId"), "method": method.upper(),
                                     "path": self.base_path + path, "query": query, "body": None}
        schema = self.body_schema(op)
        if schema is not None:
            fields, required = self.fields(schema)
            described["body"] = {"fields": sorted(fields), "required": sorted(required)}
        return described

    def check_record(self, record: Any, definition: str, where: str = "") -> None:
        """Refuse a hand-made record with a key its definition does not have."""
        fields, _required = self.fields({"$ref": f"#/definitions/{definition}"})
        for path in sorted(_paths(record)):
            if path not in fields and not any(path.startswith(f[:-1]) for f in fields
                                              if f.endswith(".*")):
                raise SystemExit(f"{self.name}: {where or definition}: {path} is not a property "
                                 f"of {definition}")


def _paths(value: Any, prefix: str = "") -> set[str]:
    """The field paths of a JSON value, spelled like `Spec.fields`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found |= {path} | _paths(sub, path)
    elif isinstance(value, list):
        for item in value:
            found |= _paths(item, prefix + "[]")
    return found


def _query(params: Iterable[tuple[str, Any]]) -> str:
    """Swagger 2.0 query encoding: arrays comma-separated (collectionFormat csv, the default)."""
    pairs = [(name, ",".join(map(str, value)) if isinstance(value, list) else str(value))
             for name, value in params]
    return ("?" + urlencode(pairs)) if pairs else ""


def interaction(method: str, uri: str, body: Any, status: int, answer: Any) -> dict[str, Any]:
    """A vcrpy interaction (the shape `vcr.serialize` writes) for one example exchange."""
    text = "" if answer is None else (answer if isinstance(answer, str) else json.dumps(answer))
    headers = {"Accept": ["application/json"]}
    if body is not None:
        headers["Content-Type"] = ["application/json"]
    return {
        "request": {"method": method, "uri": uri, "headers": headers,
                    "body": None if body is None else json.dumps(body)},
        "response": {"status": {"code": status, "message": HTTPStatus(status).phrase},
                     "headers": {"Content-Type": ["application/json"]} if text else {},
                     "body": {"string": text}},
    }


def cassette(spec_files: Sequence[str], base_url: str, operations: Sequence[dict[str, Any]],
             exchanges: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "version": 1,
        "interactions": [exchange for _label, exchange in exchanges],
        "metadata": {
            "built_by": "cassettes/build_from_specs.py",
            "sources": list(spec_files),
            "base_url": base_url,
            "operations": list(operations),
            "examples": [label for label, _exchange in exchanges],
        },
    }


# --- Amazon: x-amzn-api-sandbox static cases ---------------------------------------------------


def _sandbox_cases(spec: Spec, path: str, method: str) -> list[tuple[str, dict[str, Any]]]:
    """Each static case of an operation as (label, interaction), in the spec's order."""
    op = spec.operation(path, method)
    found = []
    for status, response in op["responses"].items():
        for number, case in enumerate(response.get("x-amzn-api-sandbox", {}).get("static", []), 1):
            params = {k: v.get("value") for k, v in case["request"].get("parameters", {}).items()}
            concrete = path
            for name in list(params):
                if "{" + name + "}" in concrete:
                    concrete = concrete.replace("{" + name + "}", str(params.pop(name)))
            body = params.pop("body", None)
            uri = AMAZON_SANDBOX + concrete + _query(params.items())
            answer = case.get("response") if int(status) != 204 else None
            label = f"{spec.name} {op['operationId']} {status} static case {number}"
            found.append((label, interaction(method.upper(), uri, body, int(status), answer)))
    return found


def amazon(specs: Path) -> dict[str, dict[str, Any]]:
    orders = Spec(specs / "amazon" / "orders_2026-01-01.json", "orders_2026-01-01.json")
    v0 = Spec(specs / "amazon" / "ordersV0.json", "ordersV0.json")
    feeds = Spec(specs / "amazon" / "feeds_2021-06-30.json", "feeds_2021-06-30.json")
    shipment = "/orders/v0/orders/{orderId}/shipmentConfirmation"
    feed_ops = [("/feeds/2021-06-30/documents", "post"), ("/feeds/2021-06-30/feeds", "post"),
                ("/feeds/2021-06-30/feeds/{feedId}", "get")]
    order_ops = [("/orders/2026-01-01/orders", "get"),
                 ("/orders/2026-01-01/orders/{orderId}", "get")]
    return {
        "spec-amazon-orders.yaml": cassette(
            ["amazon/orders_2026-01-01.json"], AMAZON_SANDBOX,
            [orders.describe(p, m) for p, m in order_ops],
            [case for p, m in order_ops for case in _sandbox_cases(orders, p, m)]),
        "spec-amazon-confirm-shipment.yaml": cassette(
            ["amazon/ordersV0.json"], AMAZON_SANDBOX, [v0.describe(shipment, "post")],
            _sandbox_cases(v0, shipment, "post")),
        "spec-amazon-feeds.yaml": cassette(
            ["amazon/feeds_2021-06-30.json"], AMAZON_SANDBOX,
            [feeds.describe(p, m) for p, m in feed_ops],
            [case for p, m in feed_ops for case in _sandbox_cases(feeds, p, m)]),
    }


# --- VTEX: request and response examples -------------------------------------------------------


def _example(spec: Spec, path: str, method: str, status: str = "200") -> Any:
    response = spec.resolve(spec.operation(path, method)["responses"][status])
    content = response.get("content", {}).get("application/json", {})
    return content.get("example")


def _param_example(spec: Spec, path: str, method: str, name: str) -> str:
    for param in spec.operation(path, method).get("parameters", []):
        param = spec.resolve(param)
        if param.get("name") == name:
            value = param.get("example") or param.get("schema", {}).get("example")
            return str(value).split(" or ")[0]  # "1172452900788-01 or seq501456": the first
    raise SystemExit(f"{spec.name}: {method} {path} has no example for {name}")


def vtex(specs: Path) -> dict[str, dict[str, Any]]:
    oms = Spec(specs / "vtex" / "VTEX - Orders API.json", "VTEX - Orders API.json")
    logistics = Spec(specs / "vtex" / "VTEX - Logistics API.json", "VTEX - Logistics API.json")
    get, cancel = "/api/oms/pvt/orders/{orderId}", "/api/oms/pvt/orders/{orderId}/cancel"
    reserve = "/api/logistics/pvt/inventory/reservations"
    release = "/api/logistics/pvt/inventory/reservations/{reservationId}/cancel"
    order_id = _param_example(oms, get, "get", "orderId")
    cancel_id = _param_example(oms, cancel, "post", "orderId")
    cancel_body = oms.resolve(oms.operation(cancel, "post")["requestBody"])["content"][
        "application/json"]["example"]
    reserve_body = logistics.operation(reserve, "post")["requestBody"]["content"][
        "application/json"]["example"]
    reservation = _param_example(logistics, release, "post", "reservationId")
    exchanges = [
        ("VTEX - Orders API.json GetOrder 200 example",
         interaction("GET", VTEX_EXAMPLES + get.replace("{orderId}", order_id), None, 200,
                     _example(oms, get, "get"))),
        ("VTEX - Orders API.json CancelOrder 200 example",
         interaction("POST", VTEX_EXAMPLES + cancel.replace("{orderId}", cancel_id), cancel_body,
                     200, _example(oms, cancel, "post"))),
        ("VTEX - Logistics API.json CreateReservation 200 example",
         interaction("POST", VTEX_EXAMPLES + reserve, reserve_body, 200,
                     _example(logistics, reserve, "post"))),
        ("VTEX - Logistics API.json CancelReservation 200 (no body in the spec)",
         interaction("POST", VTEX_EXAMPLES + release.replace("{reservationId}", reservation),
                     None, 200, None)),
    ]
    operations = [oms.describe(get, "get"), oms.describe(cancel, "post"),
                  logistics.describe(reserve, "post"), logistics.describe(release, "post")]
    return {"spec-vtex.yaml": cassette(["vtex/VTEX - Orders API.json",
                                        "vtex/VTEX - Logistics API.json"],
                                       VTEX_EXAMPLES, operations, exchanges)}


# --- Adobe Commerce: minimal records from the definitions --------------------------------------

AMAZON_ID = "171-9876543-2109876"  # getOrder's first example: an unshipped merchant order


def _commerce_order() -> dict[str, Any]:
    """sales-data-order-interface: required (base_grand_total, customer_email, grand_total,
    items[].sku) plus what mappings/adobe-commerce.yaml reads."""
    address = {"address_type": "shipping", "firstname": "Maria", "lastname": "Silva Santos",
               "street": ["Rua das Flores, 123"], "city": "Sao Paulo", "region": "SP",
               "postcode": "01234-567", "country_id": "BR", "telephone": "+55 11 98765-4321"}
    return {
        "entity_id": 1, "increment_id": AMAZON_ID, "ext_order_id": AMAZON_ID,
        "state": "processing", "status": "processing",
        "created_at": "2024-12-24 20:30:00", "updated_at": "2024-12-25 08:15:00",
        "customer_email": "buyer-email@marketplace.amazon.com.br",
        "customer_firstname": "Maria", "customer_lastname": "Silva Santos",
        "grand_total": 299.9, "base_grand_total": 299.9, "order_currency_code": "BRL",
        "shipping_description": "Amazon Standard",
        "items": [{"item_id": 1, "sku": "ECHO-POP-US-BLK", "name": "Echo Pop", "price": 299.9,
                   "qty_ordered": 1, "qty_invoiced": 0, "qty_shipped": 0, "qty_canceled": 0,
                   "is_virtual": 0}],
        "extension_attributes": {"shipping_assignments": [
            {"shipping": {"address": address, "method": "flatrate_flatrate"}, "items": []}]},
    }


def _search(spec: Spec, path: str, items: list[dict[str, Any]], definition: str,
            item_definition: str) -> dict[str, Any]:
    for item in items:
        spec.check_record(item, item_definition, f"GET {path}")
    result = {"items": items, "search_criteria": {"filter_groups": []}, "total_count": len(items)}
    spec.check_record(result, definition, f"GET {path}")
    return result


def adobe(specs: Path) -> dict[str, dict[str, Any]]:
    spec = Spec(specs / "adobe-commerce" / "admin-schema-2.4.8.yaml", "admin-schema-2.4.8.yaml")
    base = f"https://{spec.doc['host']}{spec.base_path}"
    order = _commerce_order()
    spec.check_record(order, "sales-data-order-interface")
    shipment = {"entity_id": 1, "order_id": 1, "created_at": "2024-12-26 10:00:00", "items": [],
                "comments": [], "tracks": [{
                    "order_id": 1, "parent_id": 1, "weight": 0, "qty": 1,
                    "description": "", "track_number": "1Z999AA10123456784", "title": "UPS",
                    "carrier_code": "ups"}]}
    by_ext = [("searchCriteria[filterGroups][0][filters][0][field]", "ext_order_id"),
              ("searchCriteria[filterGroups][0][filters][0][value]", AMAZON_ID),
              ("searchCriteria[filterGroups][0][filters][0][conditionType]", "eq"),
              ("searchCriteria[pageSize]", "1")]
    changed = [("searchCriteria[filterGroups][0][filters][0][field]", "updated_at"),
               ("searchCriteria[filterGroups][0][filters][0][value]", "2024-12-25 00:00:00"),
               ("searchCriteria[filterGroups][0][filters][0][conditionType]", "gteq"),
               ("searchCriteria[pageSize]", "100")]
    shipments = [("searchCriteria[filterGroups][0][filters][0][field]", "order_id"),
                 ("searchCriteria[filterGroups][0][filters][0][value]", "1"),
                 ("searchCriteria[filterGroups][0][filters][0][conditionType]", "eq")]
    orders = _search(spec, "/V1/orders", [order], "sales-data-order-search-result-interface",
                     "sales-data-order-interface")
    found = _search(spec, "/V1/shipments", [shipment],
                    "sales-data-shipment-search-result-interface", "sales-data-shipment-interface")
    history = {"statusHistory": {"comment": "minimal", "is_customer_notified": 0,
                                 "is_visible_on_front": 0, "parent_id": 1}}
    create = {"entity": {"base_grand_total": 299.9, "customer_email": order["customer_email"],
                         "grand_total": 299.9, "items": [{"sku": "ECHO-POP-US-BLK"}]}}
    page = "searchCriteria[currentPage]"
    minimal = "admin-schema-2.4.8.yaml {} (no example in the schema: minimal, from the definitions)"
    exchanges = [
        (minimal.format("GetV1OrdersId"),
         interaction("GET", f"{base}/V1/orders/1", None, 200, order)),
        (minimal.format("GetV1Orders by ext_order_id"),
         interaction("GET", f"{base}/V1/orders{_query(by_ext)}", None, 200, orders)),
        (minimal.format("GetV1Orders changed, page 1"),
         interaction("GET", f"{base}/V1/orders{_query([*changed, (page, '1')])}", None, 200,
                     orders)),
        (minimal.format("GetV1Orders changed, page 2 (Magento answers the last page again)"),
         interaction("GET", f"{base}/V1/orders{_query([*changed, (page, '2')])}", None, 200,
                     orders)),
        (minimal.format("PostV1OrdersIdCancel"),
         interaction("POST", f"{base}/V1/orders/1/cancel", None, 200, True)),
        (minimal.format("PostV1OrderOrderIdInvoice"),
         interaction("POST", f"{base}/V1/order/1/invoice", {}, 200, 1)),
        (minimal.format("PostV1OrderOrderIdShip"),
         interaction("POST", f"{base}/V1/order/1/ship", {}, 200, 1)),
        (minimal.format("PostV1OrderOrderIdRefund"),
         interaction("POST", f"{base}/V1/order/1/refund", {}, 200, 1)),
        (minimal.format("PostV1OrdersIdComments"),
         interaction("POST", f"{base}/V1/orders/1/comments", history, 200, True)),
        (minimal.format("GetV1Shipments"),
         interaction("GET", f"{base}/V1/shipments{_query(shipments)}", None, 200, found)),
        (minimal.format("PostV1Orders"),
         interaction("POST", f"{base}/V1/orders", create, 200, order)),
    ]
    operations = [spec.describe(p, m) for p, m in [
        ("/V1/orders/{id}", "get"), ("/V1/orders", "get"), ("/V1/orders/{id}/cancel", "post"),
        ("/V1/order/{orderId}/invoice", "post"), ("/V1/order/{orderId}/ship", "post"),
        ("/V1/order/{orderId}/refund", "post"), ("/V1/orders/{id}/comments", "post"),
        ("/V1/shipments", "get"), ("/V1/orders", "post"), ("/V1/customers/search", "get"),
        ("/V1/customers", "post")]]
    return {"spec-adobe-commerce.yaml": cassette(["adobe-commerce/admin-schema-2.4.8.yaml"], base,
                                                 operations, exchanges)}


def main(argv: Sequence[str]) -> int:
    specs = Path(argv[0]) if argv else DEFAULT_SPECS
    if not specs.is_dir():
        print(f"no specs folder {specs} (pass it as the first argument)", file=sys.stderr)
        return 2
    from spec_walmart import walmart  # beside this script; it builds on the helpers above
    from spec_walmart_mx import walmart_mx

    built = {**amazon(specs), **vtex(specs), **adobe(specs), **walmart(specs), **walmart_mx(specs)}
    for name, data in built.items():
        (HERE / name).write_text(yamlserializer.serialize(data))
        print(f"cassettes/{name}: {len(data['interactions'])} interaction(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
