"""Walmart México (mappings/walmart.yaml, variant mx) against the MX spec's own examples
(cassettes/spec-walmart-mx.yaml, built by cassettes/spec_walmart_mx.py), replayed with record
mode `none`: every request the variant sends is an operation of mx-mp-orders.json carrying
only the parameters and body fields the spec defines (and those it requires)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cassettes import CASSETTES, NOW, examples, spec_vcr

from connector.evaluate import rule_context
from connector.execute import DONE, execute
from connector.fetch import Window, get_order, list_changed
from connector.model import ActionCall
from connector.normalise import normalise
from connector.plan import FlowRuntime, Planned, plan_call, prepare
from connector.project import Config, load_config, require
from connector.state.store import StateStore, open_store
from connector.transport.cassette import read_metadata
from connector.transport.client import SystemClient
from connector.transport.http import Transport, new_client

REPO = Path(__file__).resolve().parents[1]
CASSETTE = "spec-walmart-mx.yaml"
MX = {"CONNECTOR_WALMART_MARKET": "mx"}
PLACEHOLDERS = {"walmart": {"client_id": "x", "client_secret": "x", "statuses": ["Created"]},
                "vtex": {"account": "apiexamples", "app_key": "x", "app_token": "x"},
                "adobe-commerce": {"base_url": "https://example.com/rest/default", "token": "x"}}


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield state
    state.close()


def runtime_of(config: Config, flow: str) -> FlowRuntime:
    return prepare(config, flow, MX, system_overrides=PLACEHOLDERS)


def walmart(runtime: FlowRuntime) -> SystemClient:
    """The MX variant's client at the cassette's host; its auth headers sent as static ones
    (the token exchange is the US cassette's subject)."""
    system = runtime.systems["walmart"]
    assert system.title.endswith("(Token API, Order Management v3, MX)")
    settings = {**runtime.system_settings["walmart"],
                "base_url": read_metadata(CASSETTES / CASSETTE)["base_url"]}
    system = dataclasses.replace(system, auth=dataclasses.replace(system.auth, kind="headers"))
    return SystemClient(system, settings, Transport(new_client(), sleep=lambda s: None),
                        runtime.redact)


def test_listing_follows_the_cursor_then_lists_wfs_orders(config: Config) -> None:
    runtime = runtime_of(config, "walmart-to-vtex")
    span = Window("2022-03-01T00:00:00Z", "2022-03-31T00:00:00Z")
    with spec_vcr(CASSETTE, exact_path=False).use_cassette(str(CASSETTES / CASSETTE)) as tape:
        records = list(list_changed(walmart(runtime), span))
    cursor = examples(CASSETTE, "getAllOrdersUsingCursor")[0]["order"]
    wfs = examples(CASSETTE, "getAllWFSOrders")[0]["order"]
    assert [r.get("purchaseOrderId") or r["customerOrderId"] for r in records] == [
        o["purchaseOrderId"] for o in cursor] + [o["customerOrderId"] for o in wfs]
    assert tape.play_count == 3  # the cursor's two pages, the WFS page (totalCount reached)
    orders = [normalise(runtime.systems["walmart"], r) for r in records]
    assert {o["fulfilment"] for o in orders[len(cursor):]} == {"marketplace"}  # DC: WFS
    assert all(o["totals"]["currency"] == "MXN" for o in orders)


def test_get_order_is_get_all_orders_by_purchase_order_id(config: Config) -> None:
    runtime = runtime_of(config, "walmart-to-vtex")
    one = examples(CASSETTE, "getAllOrders")[0]["order"][0]
    with spec_vcr(CASSETTE).use_cassette(str(CASSETTES / CASSETTE)):
        assert get_order(walmart(runtime), one["purchaseOrderId"]) == one


def _planned(runtime: FlowRuntime, action: str, order: dict[str, Any],
             args: dict[str, Any] | None = None) -> Planned:
    source, target = (order, None) if runtime.flow.source == "walmart" else (
        {"id": "1", "system": "adobe-commerce", "attributes": {}}, order)
    context = rule_context(source, target, runtime.settings, runtime.public_settings, {}, NOW)
    planned = plan_call(runtime, runtime.flow.rules[0], ActionCall(action, args or {}), context,
                        source, target, {}, NOW)
    assert planned.runnable, planned.reasons
    return planned


@pytest.mark.parametrize(("flow", "action", "args"), [
    ("walmart-to-adobe-commerce", "walmart.acknowledge_order", {}),
    ("adobe-commerce-to-walmart", "walmart.cancel_lines", {"reason": "SELLER_CANCEL_OUT_OF_STOCK"}),
    ("adobe-commerce-to-walmart", "walmart.ship_lines", {"carrier": "FedEx",
                                                         "tracking_number": "12345"}),
])
def test_actions_send_the_mx_bodies(config: Config, store: StateStore, flow: str, action: str,
                                    args: dict[str, Any]) -> None:
    runtime = runtime_of(config, flow)
    raw = copy.deepcopy(examples(CASSETTE, "getAllOrders")[0]["order"][0])
    # The example's lines are Acknowledged: one is made Created so that acknowledge applies.
    raw["orderLines"][0]["orderLineStatus"][0]["status"] = "Created"
    order = normalise(runtime.systems["walmart"], raw)
    planned = _planned(runtime, action, order, args)
    sent: list[Any] = []
    player = spec_vcr(CASSETTE)
    player.register_matcher("sent", lambda new, recorded: sent.append(new))
    player.match_on = (*player.match_on, "sent")
    with player.use_cassette(str(CASSETTES / CASSETTE)):
        outcome = execute(walmart(runtime), planned, store, sleep=lambda s: None)
    assert outcome.status == DONE, outcome.message
    last = {(r.method, r.path): r for r in sent}  # a request is offered to several examples
    paths = sorted(path for _method, path in last)
    number = raw["purchaseOrderId"]
    expected = {"walmart.acknowledge_order": ["acknowledge"], "walmart.cancel_lines": ["cancel"],
                "walmart.ship_lines": ["acknowledge", "ship"]}[action]
    assert paths == [f"/v3/orders/{number}/{end}" for end in expected]
    if action.endswith("ship_lines"):  # the Created line is acknowledged first
        (shipment,) = json.loads(last[("POST", f"/v3/orders/{number}/ship")].body)["shipments"]
        assert shipment["carrier"] == "MX-FEDX" and "trackingURL" not in shipment
        assert [line["primeLineNo"] for line in shipment["shipmentLines"]] == [
            line["primeLineNumber"] for line in raw["orderLines"]]
