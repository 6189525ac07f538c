"""The spec cassettes (cassettes/spec-*.yaml, built by cassettes/build_from_specs.py from the
official examples) replayed with record mode `none` through the connector's own code paths:
normalisation with the shipped mappings, fetch, look-up and execute.

A request matches a recorded example when it is the same operation (method and path template
from the cassette's metadata) and carries only what the spec allows: known query parameters
(Magento's searchCriteria indices taken as `[0]`, the form the spec lists) with values from their
enums, body fields that the schema defines and every field it requires. The path must also be the
example's own (so that the right example answers) unless a test says otherwise, and body values
are compared only where a test needs to choose between examples (confirmShipment 204 or 400).
An example's values are otherwise its own choice (another includedData, another feed type).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import vcr
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest

from connector.transport.client import SystemClient
from connector.errors import HTTPError
from connector.evaluate import rule_context
from connector.execute import DONE, FAILED, RetryAcrossRuns, execute
from connector.execute.batch import Batcher, batch_context
from connector.fetch import Window, get_order, list_changed
from connector.transport.http import Transport, new_client
from connector.lookup import find_counterpart
from connector.model import ActionCall
from connector.normalise import canonical, normalise, search
from connector.plan import FlowRuntime, Planned, plan_call, prepare
from connector.project import Config, load_config, require
from connector.transport.cassette import read_metadata
from connector.state.store import StateStore, open_store

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"
NOW = "2026-03-02T12:00:00Z"
AMAZON_ID = "171-9876543-2109876"
ORDERS = "spec-amazon-orders.yaml"


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


# --- the spec matcher ----------------------------------------------------------------------------


def _template(path: str) -> re.Pattern[str]:
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[^}]+\})", path)))


def _paths(value: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            found |= {path} | _paths(sub, path)
    elif isinstance(value, list):
        for item in value:
            found |= _paths(item, prefix + "[]")
    return found


def _subset(sent: Any, recorded: Any) -> bool:
    if isinstance(sent, dict) and isinstance(recorded, dict):
        return all(k in recorded and _subset(v, recorded[k]) for k, v in sent.items())
    if isinstance(sent, list) and isinstance(recorded, list):
        return len(sent) == len(recorded) and all(map(_subset, sent, recorded))
    return bool(sent == recorded)


def _body(request: Any) -> Any:
    raw = request.body
    text = raw.decode() if isinstance(raw, bytes) else (raw or "")
    return json.loads(text) if text.strip() else None


def spec_matcher(cassette: str, *, exact_path: bool = True,
                 values: bool = False) -> Callable[[Any, Any], None]:
    """The vcrpy matcher (incoming request, recorded example) described in the docstring."""
    operations = read_metadata(CASSETTES / cassette)["operations"]

    def operation(request: Any) -> dict[str, Any] | None:
        return next((op for op in operations if op["method"] == request.method
                     and _template(op["path"]).fullmatch(request.path)), None)

    def spec_request(new: Any, recorded: Any) -> None:
        op = operation(new)
        assert op is not None, f"{new.method} {new.path} is no operation of {cassette}"
        assert op is operation(recorded), f"another operation than {op['operation']}"
        assert not exact_path or new.path == recorded.path, f"another path: {new.path}"
        for name, value in new.query:
            spec_name = re.sub(r"\[\d+\]", "[0]", name)
            assert spec_name in op["query"], f"{op['operation']} has no query parameter {name}"
            enum = op["query"][spec_name].get("enum")
            assert not enum or set(value.split(",")) <= set(enum), f"{name}={value} not in {enum}"
        body = _body(new)
        if op["body"] is None:
            assert body is None, f"{op['operation']} takes no body"
            return
        sent = _paths(body)
        allowed = set(op["body"]["fields"])
        unknown = [p for p in sorted(sent) if p not in allowed and not any(
            p.startswith(f[:-1]) for f in allowed if f.endswith(".*"))]
        assert not unknown, f"{op['operation']}: fields not in the spec: {unknown}"
        missing = [r for r in op["body"]["required"] if r not in sent and (
            "[]" not in r or any(p.startswith(r.rsplit("[]", 1)[0] + "[].") for p in sent))]
        assert not missing, f"{op['operation']}: required fields not sent: {missing}"
        assert not values or _subset(body, _body(recorded)), "other values than the example's"

    return spec_request


def spec_vcr(cassette: str, *, exact_path: bool = True, values: bool = False) -> vcr.VCR:
    player = vcr.VCR(record_mode="none", match_on=("method", "spec_request"))
    player.register_matcher("spec_request", spec_matcher(cassette, exact_path=exact_path,
                                                         values=values))
    return player


def client(config: Config, runtime: FlowRuntime, system: str, cassette: str) -> SystemClient:
    """A client of `system` pointed at the cassette's host. The SP-API cassettes hold the SP-API
    examples only, not the LWA token exchange: the client sends its auth headers as static
    ones (an empty token) instead of exchanging a refresh token first."""
    settings = dict(runtime.system_settings[system])
    settings["base_url"] = read_metadata(CASSETTES / cassette)["base_url"]
    mapping = config.systems[system]
    if mapping.auth.exchanges_token:
        static = dataclasses.replace(mapping.auth, kind="headers")
        mapping = dataclasses.replace(mapping, auth=static)
    return SystemClient(mapping, settings, Transport(new_client(), sleep=lambda s: None),
                        runtime.redact)


def runtime_of(config: Config, flow: str) -> FlowRuntime:
    placeholders = {"amazon": {"client_id": "x", "client_secret": "x", "refresh_token": "x"},
                    "vtex": {"account": "apiexamples", "app_key": "x", "app_token": "x"},
                    "adobe-commerce": {"base_url": "https://example.com/rest/default",
                                       "token": "x"}}
    return prepare(config, flow, {}, system_overrides=placeholders)


def plan(runtime: FlowRuntime, action: str, order: dict[str, Any], target: dict[str, Any] | None,
         args: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None) -> Planned:
    context = rule_context(order, target, runtime.settings, runtime.public_settings, outputs or {},
                           NOW)
    planned = plan_call(runtime, runtime.flow.rules[0], ActionCall(action, args or {}), context,
                        order, target, outputs or {}, NOW)
    assert planned.runnable, planned.reasons
    return planned


def examples(cassette: str, operation: str) -> list[Any]:
    """The successful answers of one operation's examples in a cassette, in order."""
    op = next(o for o in read_metadata(CASSETTES / cassette)["operations"]
              if o["operation"] == operation)
    data = yaml.safe_load((CASSETTES / cassette).read_text())
    return [json.loads(i["response"]["body"]["string"]) for i in data["interactions"]
            if i["request"]["method"] == op["method"]
            and i["response"]["status"]["code"] in (200, 201, 202)
            and _template(op["path"]).fullmatch(urlsplit(i["request"]["uri"]).path)]


# --- Amazon SP-API: orders_2026-01-01.json ------------------------------------------------------

#: The canonical fields the shipped mapping must make of each example order.
AMAZON_ORDERS: dict[str, dict[str, Any]] = {
    "250-1234567-8901234": {"status": "SHIPPED", "fulfilment": "marketplace", "actor": None,
                            "totals": {"amount": 19940, "currency": "JPY"},
                            "buyer": {"name": "John Smith"},
                            "items": [("ECHO-DOT-4-JP-CHARCOAL", 1, 1, 5980),
                                      ("FIRE-TV-4K-MAX-JP", 2, 2, 6980)],
                            "shipping": {"tracking": None, "method": "STANDARD"},
                            "address": {"country": "JP", "city": "Tokyo", "postcode": "150-0002",
                                        "street": ["123 Business Park", "Suite 456"]}},
    "202-7654321-1098765": {"status": "SHIPPED", "fulfilment": "merchant", "actor": None,
                            "totals": {"amount": 34.99, "currency": "GBP"},
                            "buyer": {"name": "Sarah Thompson"},
                            "items": [("ECHO-DOT-4-UK-CHARCOAL-SINGLE", 1, 1, 34.99)],
                            "shipping": {"tracking": "15501234567890123456", "carrier": "DPD",
                                         "method": "DPD Next Day Delivery",
                                         "shipped_at": "2024-12-25T14:00:00Z"},
                            "address": {"country": "GB", "region": "England",
                                        "street": ["45 Oak Avenue", "Flat 2A"]}},
    "171-2345678-9012345": {"status": "UNSHIPPED", "fulfilment": "merchant", "actor": None,
                            "totals": {"amount": 1599.9, "currency": "BRL"},
                            "buyer": {"name": "Carlos Oliveira"},
                            "items": [("DELL-I15-BR-001", 1, 0, 1599.9)],
                            "shipping": {"tracking": None},
                            "address": {"country": "BR", "company": "Oliveira Tecnologia Ltda"}},
    AMAZON_ID: {"status": "UNSHIPPED", "fulfilment": "merchant", "actor": None,
                "totals": {"amount": 299.9, "currency": "BRL"},
                "buyer": {"name": "Maria Silva Santos"}, "shipping": {"tracking": None},
                "address": {"country": "BR", "city": "São Paulo"}},
    "028-1234567-8901234": {"status": "SHIPPED", "fulfilment": "merchant", "actor": None,
                            "totals": {"amount": 125.0, "currency": "TRY"},
                            "address": {"country": "TR", "city": "Istanbul"}},
    "114-9876543-1234567": {"status": "UNSHIPPED", "fulfilment": "merchant", "actor": None,
                            "totals": {"amount": 49.99, "currency": "USD"},
                            "buyer": {"name": None, "email": None},
                            "items": [("ECHO-POP-US-BLK", 1, 0, 39.99)],
                            "attributes": {"marketplace_id": "ATVPDKIKX0DER"}},
}


def check_canonical(order: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in ("status", "fulfilment", "actor", "totals"):
        if name in expected:
            assert order[name] == expected[name], name
    for name in ("buyer", "shipping", "attributes"):
        for key, value in expected.get(name, {}).items():
            assert order[name][key] == value, f"{name}.{key}"
    for key, value in expected.get("address", {}).items():
        assert order["shipping"]["address"][key] == value, f"shipping.address.{key}"
    if "items" in expected:
        got = [(i["sku"], i["quantity"], i["quantity_shipped"], i["price"]) for i in order["items"]]
        assert got == expected["items"]
    assert all(isinstance(i["id"], str) and i["id"] for i in order["items"])


def test_every_amazon_example_order_is_covered() -> None:
    found = [o["orderId"] for page in examples("spec-amazon-orders.yaml", "searchOrders")
             for o in page["orders"]]
    found += [body["order"]["orderId"] for body in examples("spec-amazon-orders.yaml", "getOrder")
              if "order" in body]
    assert sorted(found) == sorted(AMAZON_ORDERS)


def test_search_orders_first_page_through_fetch(config: Config) -> None:
    runtime = runtime_of(config, "amazon-to-vtex")
    amazon = client(config, runtime, "amazon", "spec-amazon-orders.yaml")
    span = Window("2024-12-20T00:00:00Z", "2024-12-26T00:00:00Z")
    with spec_vcr("spec-amazon-orders.yaml").use_cassette(
            str(CASSETTES / "spec-amazon-orders.yaml")) as tape:
        records = list(list_changed(amazon, span, limit=1))
        assert tape.play_count == 1
    order = normalise(config.systems["amazon"], records[0])
    assert order["id"] == "250-1234567-8901234"
    check_canonical(order, AMAZON_ORDERS[order["id"]])


def test_search_orders_example_pages_normalise(config: Config) -> None:
    pages = examples("spec-amazon-orders.yaml", "searchOrders")
    for page in pages:
        for raw in page["orders"]:
            check_canonical(normalise(config.systems["amazon"], raw), AMAZON_ORDERS[raw["orderId"]])
    assert [search("pagination.nextToken", p) for p in pages] == ["2YgYW55IGNhcm5hbCBwbGVhc3VyZS4",
                                                                  None, None]


@pytest.mark.parametrize("order_id", [AMAZON_ID, "028-1234567-8901234", "114-9876543-1234567"])
def test_get_order_examples_through_fetch(config: Config, order_id: str) -> None:
    runtime = runtime_of(config, "amazon-to-vtex")
    amazon = client(config, runtime, "amazon", "spec-amazon-orders.yaml")
    with spec_vcr(ORDERS).use_cassette(str(CASSETTES / ORDERS)):
        raw = get_order(amazon, order_id)
    assert raw is not None
    check_canonical(normalise(config.systems["amazon"], raw), AMAZON_ORDERS[order_id])


def test_get_order_400_example_is_an_error_naming_the_cause(config: Config) -> None:
    runtime = runtime_of(config, "amazon-to-vtex")
    amazon = client(config, runtime, "amazon", "spec-amazon-orders.yaml")
    with spec_vcr(ORDERS).use_cassette(str(CASSETTES / ORDERS)), \
            pytest.raises(HTTPError, match="400.*Invalid Input"):
        get_order(amazon, "TEST_CASE_400")


def test_amazon_lookup_of_a_commerce_order(config: Config) -> None:
    runtime = runtime_of(config, "adobe-commerce-to-amazon")
    amazon = client(config, runtime, "amazon", "spec-amazon-orders.yaml")
    with spec_vcr(ORDERS).use_cassette(str(CASSETTES / ORDERS)):
        commerce = {"attributes": {"ext_order_id": AMAZON_ID}}
        found = find_counterpart(amazon, "adobe-commerce", commerce)
    assert found is not None and found["id"] == AMAZON_ID
    check_canonical(found, AMAZON_ORDERS[AMAZON_ID])


def test_order_totals_from_item_level_breakdowns(config: Config) -> None:
    body = examples("spec-amazon-orders.yaml", "getOrder")[2]
    order = normalise(config.systems["amazon"], body["order"])
    assert order["id"] == "114-9876543-1234567"
    assert (order["attributes"]["subtotal"], order["attributes"]["tax_total"]) == (39.99, 10.0)


# --- Amazon SP-API: confirmShipment (ordersV0.json) and the feeds (feeds_2021-06-30.json) -------

SHIPMENT_ORDER = "902-1106328-1059050"  # the confirmShipment examples' order


def amazon_target(config: Config, status: str = "UNSHIPPED") -> dict[str, Any]:
    """The Amazon order of the examples, as adobe-commerce-to-amazon sees its target."""
    return canonical({
        "id": SHIPMENT_ORDER, "status": status, "fulfilment": "merchant",
        "items": [{"id": "79039765272157", "sku": "SKU-1", "quantity": 1}],
        "attributes": {"marketplace_id": "ATVPDKIKX0DER",
                       "shipment_items": [{"orderItemId": "79039765272157", "quantity": 1}]},
    }, config.systems["amazon"])


def commerce_source(config: Config) -> dict[str, Any]:
    return canonical({"id": "1", "status": "complete", "attributes": {
        "ext_order_id": SHIPMENT_ORDER}}, config.systems["adobe-commerce"])


@pytest.mark.parametrize(("ship_date", "status", "message"), [
    ("2022-02-11T01:00:00.000Z", DONE, ""),          # the 204 example
    ("02/21/2022", FAILED, "400.*Invalid Input"),    # the 400 example: not ISO 8601
])
def test_confirm_shipment_examples_through_execute(config: Config, store: StateStore,
                                                   ship_date: str, status: str,
                                                   message: str) -> None:
    runtime = runtime_of(config, "adobe-commerce-to-amazon")
    amazon = client(config, runtime, "amazon", "spec-amazon-confirm-shipment.yaml")
    planned = plan(runtime, "amazon.confirm_shipment", commerce_source(config),
                   amazon_target(config),
                   {"carrier": "FedEx", "carrier_name": "FedEx", "tracking_number": "112345678",
                    "ship_date": ship_date, "package_reference_id": "1"})
    # values compared: the mapping's body must be a part of the example's, value for value.
    with spec_vcr("spec-amazon-confirm-shipment.yaml", values=True).use_cassette(
            str(CASSETTES / "spec-amazon-confirm-shipment.yaml")) as tape:
        outcome = execute(amazon, planned, store, sleep=lambda s: None)
        assert tape.play_count == 1
    assert outcome.status == status
    assert re.search(message, outcome.message)


def test_cancel_feed_examples_through_execute_and_steps(config: Config, store: StateStore) -> None:
    """createFeedDocument → upload → createFeed → getFeed. The upload goes to the presigned
    URL of the createFeedDocument example, which the spec does not describe (no example): the
    action stops there, and the later steps are sent one by one with the examples' ids."""
    runtime = runtime_of(config, "adobe-commerce-to-amazon")
    amazon = client(config, runtime, "amazon", "spec-amazon-feeds.yaml")
    planned = plan(runtime, "amazon.cancel_order", commerce_source(config), amazon_target(config))
    assert planned.action is not None
    steps = {step.name: step for step in planned.action.steps}
    create_document, create_feed, wait = steps["create_document"], steps["create_feed"], steps["wait"]
    document = examples("spec-amazon-feeds.yaml", "createFeedDocument")[0]
    batcher = Batcher(runtime, {"amazon": amazon}, store, flow_key=planned.flow, partition="",
                      poll_scale=0.0, retry=RetryAcrossRuns(),
                      clock=lambda: datetime.now(timezone.utc))
    assert batcher.gather(planned).status == "queued"
    with spec_vcr("spec-amazon-feeds.yaml").use_cassette(
            str(CASSETTES / "spec-amazon-feeds.yaml")) as tape, \
            pytest.raises(CannotOverwriteExistingCassetteException) as stopped:
        batcher.flush()
    assert tape.play_count == 1
    assert (stopped.value.failed_request.method, stopped.value.failed_request.uri) == (
        "PUT", document["url"])
    group = planned.context["order"]["attributes"]["marketplace_id"]
    context = {**planned.context, **batch_context([planned], group, "b1", "2026-01-01T00:00:00Z"),
               "steps": {"create_document": {
        name: search(expr, document) for name, expr in create_document.outputs.items()}}}
    with spec_vcr("spec-amazon-feeds.yaml").use_cassette(str(CASSETTES / "spec-amazon-feeds.yaml")):
        created = amazon.send(create_feed.request, context)
        assert created.status in create_feed.expect
        assert search(create_feed.outputs["feedId"], created.json()) == "3485934"
        context["steps"]["create_feed"] = {"feedId": "feedId1"}  # getFeed's example id
        polled = amazon.send(wait.request, context)
    assert polled.status in wait.expect and wait.poll is not None
    assert not search(wait.poll.until, polled.json())
    assert search(wait.poll.fail_if, polled.json())  # CANCELLED: the action fails


# --- VTEX: Orders API (GetOrder, CancelOrder) and Logistics (reservations) -----------------------

VTEX_ORDER = "1172452900788-01"


def check_vtex_example(order: dict[str, Any]) -> None:
    assert (order["id"], order["status"], order["fulfilment"], order["actor"]) == (
        VTEX_ORDER, "handling", "merchant", None)
    assert order["buyer"]["email"] == "rodrigo.smith@email.com"
    assert [(i["sku"], i["quantity"], i["price"]) for i in order["items"]] == [("18", 1, 990)]
    assert order["totals"] == {"amount": 1160, "currency": "BRL"}
    assert (order["shipping"]["tracking"], order["shipping"]["carrier"]) == (
        "TRK-48960684", "PAC Correios")
    assert order["attributes"]["marketplace_order_id"] == VTEX_ORDER
    assert order["attributes"]["allow_cancellation"] is True


def test_vtex_get_order_example_through_fetch(config: Config) -> None:
    runtime = runtime_of(config, "amazon-to-vtex")
    vtex = client(config, runtime, "vtex", "spec-vtex.yaml")
    with spec_vcr("spec-vtex.yaml").use_cassette(str(CASSETTES / "spec-vtex.yaml")):
        raw = get_order(vtex, VTEX_ORDER)
    assert raw is not None
    check_vtex_example(normalise(config.systems["vtex"], raw))


def test_vtex_lookup_is_a_get_order(config: Config) -> None:
    """The look-up asks for AMZ-{amazon id}-01, never the example's id: matched on the
    operation (GetOrder's path template) rather than the path."""
    runtime = runtime_of(config, "amazon-to-vtex")
    vtex = client(config, runtime, "vtex", "spec-vtex.yaml")
    with spec_vcr("spec-vtex.yaml", exact_path=False).use_cassette(
            str(CASSETTES / "spec-vtex.yaml")) as tape:
        found = find_counterpart(vtex, "amazon", {"id": "1172452900788"})
        assert tape.requests[0].path.startswith("/api/oms/pvt/orders/")
        assert tape.play_count == 1
    assert found is not None
    check_vtex_example(found)


def test_vtex_cancel_order_example_through_execute(config: Config, store: StateStore) -> None:
    runtime = runtime_of(config, "amazon-to-vtex")
    vtex = client(config, runtime, "vtex", "spec-vtex.yaml")
    target = normalise(config.systems["vtex"], examples("spec-vtex.yaml", "GetOrder")[0])
    source = canonical({"id": "1172452900788", "status": "CANCELLED", "actor": "seller",
                        "fulfilment": "merchant"}, config.systems["amazon"])
    planned = plan(runtime, "vtex.cancel_order", source, target,
                   {"reason": "Unexpected stock shortage"})
    with spec_vcr("spec-vtex.yaml", values=True).use_cassette(str(CASSETTES / "spec-vtex.yaml")):
        outcome = execute(vtex, planned, store, sleep=lambda s: None)
    assert (outcome.status, outcome.outputs) == (
        DONE, {"receipt": "38e0e47da2934847b489216d208cfd91"})


def test_vtex_reservation_examples_through_execute(config: Config, store: StateStore) -> None:
    """reserve_stock's body (built from an Amazon example order) against CreateReservation's
    schema; release_reservation against CancelReservation with the example's id."""
    runtime = runtime_of(config, "amazon-to-vtex")
    vtex = client(config, runtime, "vtex", "spec-vtex.yaml")
    amazon_raw = next(b["order"] for b in examples("spec-amazon-orders.yaml", "getOrder")
                      if b["order"]["orderId"] == AMAZON_ID)
    source = normalise(config.systems["amazon"], amazon_raw)
    reserve = plan(runtime, "vtex.reserve_stock", source, None)
    release = plan(runtime, "vtex.release_reservation", source, None,
                   outputs={"reserve_stock": {"reservation_id": "00-1336411707838-01"}})
    with spec_vcr("spec-vtex.yaml").use_cassette(str(CASSETTES / "spec-vtex.yaml")):
        reserved = execute(vtex, reserve, store, sleep=lambda s: None)
        released = execute(vtex, release, store, sleep=lambda s: None)
    assert (reserved.status, reserved.outputs) == (DONE, {
        "reservation_id": "3bfe679d-c0a8-475a-b315-706f84a9deb4", "reservation_status": 1})
    assert (released.status, released.outputs) == (DONE, {"released": True})


# --- Adobe Commerce: minimal records from the admin schema's definitions ------------------------

COMMERCE = "spec-adobe-commerce.yaml"


def commerce_order(config: Config, **attributes: Any) -> dict[str, Any]:
    order = normalise(config.systems["adobe-commerce"], examples(COMMERCE, "GetV1OrdersId")[0])
    order["attributes"].update(attributes)
    return order


def check_commerce_record(order: dict[str, Any]) -> None:
    assert (order["id"], order["status"], order["fulfilment"], order["actor"]) == (
        "1", "processing", "merchant", None)
    assert order["buyer"] == {"name": "Maria Silva Santos", "first_name": "Maria",
                              "last_name": "Silva Santos",
                              "email": "buyer-email@marketplace.amazon.com.br"}
    assert [(i["sku"], i["quantity"], i["quantity_shipped"]) for i in order["items"]] == [
        ("ECHO-POP-US-BLK", 1, 0)]
    assert order["totals"] == {"amount": 299.9, "currency": "BRL"}
    assert order["shipping"]["address"]["country"] == "BR"
    assert {k: order["attributes"][k] for k in ("ext_order_id", "fully_invoiced", "fully_shipped",
                                               "shipped_any")} == {
        "ext_order_id": AMAZON_ID, "fully_invoiced": False, "fully_shipped": False,
        "shipped_any": False}


def test_commerce_get_lookup_and_listing_through_fetch(config: Config) -> None:
    runtime = runtime_of(config, "adobe-commerce-to-amazon")
    commerce = client(config, runtime, "adobe-commerce", COMMERCE)
    with spec_vcr(COMMERCE, exact_path=False).use_cassette(str(CASSETTES / COMMERCE)) as tape:
        raw = get_order(commerce, "1")
        found = find_counterpart(commerce, "amazon", {"id": AMAZON_ID})
        span = Window("2024-12-25T00:00:00Z", "2024-12-26T00:00:00Z")
        listed = list(list_changed(commerce, span))
        assert tape.play_count == 4  # get, look-up, listing pages 1 and 2 (page 2 repeats page 1)
    assert raw is not None and found is not None
    check_commerce_record(normalise(config.systems["adobe-commerce"], raw))
    check_commerce_record(found)
    assert [r["entity_id"] for r in listed] == [1]


@pytest.mark.parametrize(("body", "error"), [
    ({"statusHistory": {"comment": "x", "is_customer_notified": 0, "is_visible_on_front": 0,
                        "parent_id": 1, "colour": "red"}}, "fields not in the spec.*colour"),
    ({"statusHistory": {"comment": "x"}}, "required fields not sent.*is_customer_notified"),
])
def test_the_spec_matcher_refuses_what_the_schema_does_not_allow(body: dict[str, Any],
                                                                 error: str) -> None:
    """The check the tests above rely on: an unknown or a missing required field is no match."""
    uri = "https://example.com/rest/default/V1/orders/1/comments"
    recorded = next(r for r in vcr_requests(COMMERCE) if r.uri == uri)
    sent = VcrRequest("POST", uri, json.dumps(body).encode(), {})
    spec_matcher(COMMERCE)(recorded, recorded)  # the example itself matches
    with pytest.raises(AssertionError, match=error):
        spec_matcher(COMMERCE)(sent, recorded)


def vcr_requests(cassette: str) -> list[VcrRequest]:
    data = yaml.safe_load((CASSETTES / cassette).read_text())
    return [VcrRequest._from_dict(i["request"]) for i in data["interactions"]]


@pytest.mark.parametrize(("action", "args", "attributes", "outputs"), [
    ("adobe-commerce.cancel_order", {}, {}, {}),
    ("adobe-commerce.complete_order", {"track_number": "1Z999AA10123456784"}, {},
     {"invoice_id": 1, "shipment_id": 1}),
    ("adobe-commerce.refund_order", {}, {"fully_invoiced": True}, {"creditmemo_id": 1}),
    ("adobe-commerce.add_comment", {"comment": "Cancelled on Amazon"}, {}, {}),
])
def test_commerce_actions_through_execute(config: Config, store: StateStore, action: str,
                                          args: dict[str, Any], attributes: dict[str, Any],
                                          outputs: dict[str, Any]) -> None:
    runtime = runtime_of(config, "amazon-to-adobe-commerce")
    commerce = client(config, runtime, "adobe-commerce", COMMERCE)
    source = canonical({"id": AMAZON_ID, "status": "CANCELLED", "fulfilment": "merchant"},
                       config.systems["amazon"])
    planned = plan(runtime, action, source, commerce_order(config, **attributes), args)
    with spec_vcr(COMMERCE).use_cassette(str(CASSETTES / COMMERCE)):
        outcome = execute(commerce, planned, store, sleep=lambda s: None)
    assert (outcome.status, outcome.message, outcome.outputs) == (DONE, "", outputs)


def test_commerce_find_shipment_through_execute(config: Config, store: StateStore) -> None:
    runtime = runtime_of(config, "adobe-commerce-to-amazon")
    commerce = client(config, runtime, "adobe-commerce", COMMERCE)
    planned = plan(runtime, "adobe-commerce.find_shipment", commerce_order(config), None)
    with spec_vcr(COMMERCE).use_cassette(str(CASSETTES / COMMERCE)):
        outcome = execute(commerce, planned, store, sleep=lambda s: None)
    assert outcome.status == DONE
    assert {k: outcome.outputs[k] for k in ("track_number", "carrier_code", "shipped_at")} == {
        "track_number": "1Z999AA10123456784", "carrier_code": "ups",
        "shipped_at": "2024-12-26 10:00:00"}


def test_commerce_create_order_from_an_amazon_example(config: Config, store: StateStore) -> None:
    """create_order's body, built from SP-API's getOrder example, against PostV1Orders'
    schema: every field must be a property of sales-data-order-interface (and below)."""
    runtime = runtime_of(config, "amazon-to-adobe-commerce")
    commerce = client(config, runtime, "adobe-commerce", COMMERCE)
    amazon_raw = next(b["order"] for b in examples("spec-amazon-orders.yaml", "getOrder")
                      if b["order"]["orderId"] == AMAZON_ID)
    planned = plan(runtime, "adobe-commerce.create_order",
                   normalise(config.systems["amazon"], amazon_raw), None)
    with spec_vcr(COMMERCE).use_cassette(str(CASSETTES / COMMERCE)):
        outcome = execute(commerce, planned, store, sleep=lambda s: None)
    assert (outcome.status, outcome.message) == (DONE, "")
    assert outcome.outputs == {"entity_id": 1, "increment_id": AMAZON_ID}

