"""mappings/walmart.yaml against the sandbox's Walmart: client-credentials token with a Basic
header, cursor pages (nextCursor is a whole query string), one listing per shipNodeType, and
the order's status/actor/fulfilment derived from its lines in JMESPath."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connector.transport.client import SystemClient
from connector.fetch import Window, iso, list_changed
from connector.transport.http import Transport, new_client
from connector.normalise import normalise
from connector.project import Config, load_config, require, resolve_settings
from connector.render import Redactor
from connector.sandbox import Sandbox
from connector.sandbox.records import Buyer, Line
from connector.sandbox.walmart_mx_seed import mx_order
from connector.sandbox.walmart_seed import WALMART_SCENARIOS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


@pytest.fixture
def transport() -> Iterator[Transport]:
    with Transport(new_client(), sleep=lambda s: None) as opened:
        yield opened


def client(config: Config, sandbox: Sandbox, transport: Transport, limit: str = "200",
           **extra: str) -> SystemClient:
    system = config.systems["walmart"].variant_for(extra)
    listing = system.listing
    assert listing is not None
    query = {**listing.request.query, "limit": limit}
    system = dataclasses.replace(system, listing=dataclasses.replace(
        listing, request=dataclasses.replace(listing.request, query=query)))
    settings = resolve_settings(system.settings, {**sandbox.settings()["walmart"], **extra},
                                "walmart", {})
    return SystemClient(system, settings, transport, Redactor([settings["client_secret"]]))


def window(sandbox: Sandbox) -> Window:
    now = sandbox.clock.now()
    return Window(iso(now - timedelta(days=3)), iso(now + timedelta(minutes=1)))


def test_listing_follows_cursor_pages_and_every_ship_node_type(config: Config,
        sandbox: Sandbox, transport: Transport) -> None:
    records = list(list_changed(client(config, sandbox, transport, limit="3"), window(sandbox)))
    ids = [r["purchaseOrderId"] for r in records]
    assert sorted(ids) == sorted(WALMART_SCENARIOS)
    assert len(ids) == len(set(ids))
    listed = [r for r in sandbox.requests if r.system == "walmart" and r.path == "/v3/orders"]
    # 3 per page: 19 seller-fulfilled orders take 7 pages, 3 WFS ones 1 (+1 for no 3PL ones).
    assert len(listed) == 7 + 1 + 1
    tokens = [r for r in sandbox.requests if r.system == "walmart" and r.path == "/v3/token"]
    assert len(tokens) == 1  # fetched once, cached
    assert set(sandbox.walmart.markets_seen) == {None}  # market empty: no WM_MARKET header


def test_market_mx_selects_the_mx_variant_and_sends_wm_market(
        config: Config, sandbox: Sandbox, transport: Transport) -> None:
    sandbox.walmart.mx.add_order(mx_order("P1", statuses=("Created",), created=sandbox.clock.now(),
                                          lines=[Line("SKU-1", 1, "1")], buyer=Buyer("A", "B", "a@b.mx")))
    records = list(list_changed(client(config, sandbox, transport, limit="3", market="mx"),
                                window(sandbox)))
    assert [r["purchaseOrderId"] for r in records] == ["P1"]
    assert set(sandbox.walmart.markets_seen) == {"mx"}
    assert {r.path for r in sandbox.requests if r.system == "walmart"} == {
        "/v3/token", "/v3/orders/cursor", "/v3/orders/wfsorders"}


@pytest.mark.parametrize(("purchase_order_id", "status", "actor", "fulfilment"), [
    ("4000000000101", "Cancelled", "seller", "merchant"),
    ("4000000000102", "Cancelled", "walmart", "merchant"),
    ("4000000000103", "Cancelled", "customer", "merchant"),
    ("4000000000106", "PartlyCancelled", "seller", "merchant"),
    ("4000000000208", "PartlyCancelled", "seller", "merchant"),
    ("4000000000108", "Acknowledged", None, "merchant"),
    ("4000000000110", "Acknowledged", None, "marketplace"),
    ("4000000000201", "Created", None, "merchant"),
    ("4000000000202", "Shipped", None, "marketplace"),
])
def test_status_actor_and_fulfilment_come_from_the_lines(
        config: Config, sandbox: Sandbox, purchase_order_id: str, status: str,
        actor: str | None, fulfilment: str) -> None:
    raw = sandbox.walmart.orders[purchase_order_id]
    order = normalise(config.systems["walmart"], raw)
    assert (order["status"], order["actor"], order["fulfilment"]) == (status, actor, fulfilment)


def test_normalised_order_fields(config: Config, sandbox: Sandbox, transport: Transport) -> None:
    order = normalise(config.systems["walmart"], sandbox.walmart.orders["4000000000201"])
    assert order["buyer"]["email"] == "buyer201@example.com"
    assert order["shipping"]["address"]["country"] == "US"
    assert [i["id"] for i in order["items"]] == ["1", "2"]
    assert order["attributes"]["has_created"] is True
    assert [line["amount"] for line in order["attributes"]["open_lines"]] == ["1", "1"]
    intent = normalise(config.systems["walmart"], sandbox.walmart.orders["4000000000108"])
    assert intent["attributes"]["cancellation_requested"] is True
    assert order["attributes"]["cancellation_requested"] is False
    shipped = normalise(config.systems["walmart"], sandbox.walmart.orders["4000000000207"])
    assert shipped["shipping"]["carrier"] == "UPS" and shipped["shipping"]["tracking"]


def test_the_basic_credentials_never_show(config: Config, sandbox: Sandbox, transport: Transport) -> None:
    walmart = client(config, sandbox, transport)
    sandbox.walmart.credentials["client_secret"] = "changed"  # the token request fails
    with pytest.raises(Exception) as failure:
        list(list_changed(walmart, window(sandbox)))
    import base64
    basic = base64.b64encode(b"sandbox-walmart-client-id:sandbox-walmart-client-secret").decode()
    assert basic not in str(failure.value)
    assert basic not in walmart.redact(f"header {basic}")


def test_template_filters_for_line_level_bodies() -> None:
    from connector import templates
    lines = [{"lineNumber": "1", "amount": "2"}, {"lineNumber": "2", "amount": "1"}]
    body = templates.render_value(
        "{{ lines | merge_each({'reason': r}) | jmespath('[].{n: lineNumber, why: reason}') }}",
        {"lines": lines, "r": "SELLER_CANCEL_OUT_OF_STOCK"})
    assert body == [{"n": "1", "why": "SELLER_CANCEL_OUT_OF_STOCK"},
                    {"n": "2", "why": "SELLER_CANCEL_OUT_OF_STOCK"}]
    assert lines[0] == {"lineNumber": "1", "amount": "2"}  # the order's data is not changed
    assert templates.render("{{ ('id' ~ ':' ~ 's') | b64encode }}", {}) == "aWQ6cw=="
