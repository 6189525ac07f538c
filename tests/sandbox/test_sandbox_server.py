"""The sandbox as a whole: settings, request log, latency and fault switches, seeds, serve()."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import httpx
import pytest
from sandbox_helpers import Api

from connector.sandbox import Sandbox, environment, serve
from connector.sandbox.__main__ import main
from connector.sandbox.seed import SCENARIOS
from connector.sandbox.walmart_seed import WALMART_SCENARIOS

SCENARIO_DOC_IDS = {f"111-0000001-{n:07d}" for n in range(1, 12)} | {
    f"112-0000002-{n:07d}" for n in range(1, 9)} | {f"113-0000003-{n:07d}" for n in range(1, 5)}
WALMART_DOC_IDS = {f"40000000001{n:02d}" for n in range(1, 11)} | {
    f"40000000002{n:02d}" for n in range(1, 9)} | {f"40000000003{n:02d}" for n in range(1, 5)}


def test_settings_point_at_the_sandbox(sandbox: Sandbox) -> None:
    settings = sandbox.settings()
    base = sandbox.base_url
    assert base.startswith("http://127.0.0.1:")
    assert settings["amazon"]["base_url"] == f"{base}/amazon"
    assert settings["amazon"]["token_url"] == f"{base}/amazon-auth/auth/o2/token"
    assert settings["amazon"]["marketplace_ids"] == "ATVPDKIKX0DER"
    assert settings["vtex"] == {**settings["vtex"], "base_url": f"{base}/vtex",
                                "account": "sandbox", "affiliate_id": "AMZ"}
    assert settings["adobe-commerce"] == {**settings["adobe-commerce"],
                                          "base_url": f"{base}/adobe-commerce/rest/default",
                                          "website_id": "1", "store_id": "1"}
    assert {"client_id", "client_secret", "refresh_token"} <= set(settings["amazon"])
    assert {"app_key", "app_token"} <= set(settings["vtex"])
    assert "token" in settings["adobe-commerce"]
    lines = environment(settings)
    assert f"CONNECTOR_AMAZON_BASE_URL={base}/amazon" in lines
    assert f"CONNECTOR_ADOBE_COMMERCE_BASE_URL={base}/adobe-commerce/rest/default" in lines
    assert "CONNECTOR_VTEX_AFFILIATE_ID=AMZ" in lines


def test_base_url_needs_a_running_sandbox() -> None:
    with pytest.raises(RuntimeError):
        _ = Sandbox(orders="empty").base_url


def test_seed_matches_the_scenarios_document(sandbox: Sandbox) -> None:
    assert set(sandbox.amazon.orders) == SCENARIO_DOC_IDS == set(SCENARIOS)
    assert set(sandbox.walmart.orders) == WALMART_DOC_IDS == set(WALMART_SCENARIOS)
    assert set(sandbox.vtex.orders) == {f"AMZ-{i}-01" for i in (
        "111-0000001-0000001", "111-0000001-0000002", "111-0000001-0000003",
        "111-0000001-0000004", "111-0000001-0000005", "111-0000001-0000008",
        "111-0000001-0000009", "111-0000001-0000010", "111-0000001-0000011")} | {
        f"WLM-400000000010{n}-01" for n in (1, 2, 3, 4, 5, 6, 8, 9)} | {"WLM-4000000000110-01"}
    assert {o["ext_order_id"] for o in sandbox.commerce.orders.values()} == {
        "112-0000002-0000004", "112-0000002-0000006", "112-0000002-0000007",
        "113-0000003-0000001", "113-0000003-0000002", "113-0000003-0000003",
        "113-0000003-0000004"} | {f"400000000020{n}" for n in (4, 5, 6, 7)} | {
        f"400000000030{n}" for n in (1, 2, 3, 4)}
    now = sandbox.clock.now()
    for order in sandbox.amazon.orders.values():
        for stamp in (order["createdTime"], order["lastUpdatedTime"]):
            age = now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            assert 120 < age.total_seconds() < 24 * 3600
        skus = {item["product"]["sellerSku"] for item in order["orderItems"]}
        assert skus <= {"SKU-1", "SKU-2", "SKU-3"}


def test_the_request_log(sandbox: Sandbox, amazon: Api, vtex: Api, commerce: Api) -> None:
    amazon.get("/orders/2026-01-01/orders/111-0000001-0000001")
    vtex.post("/api/oms/pvt/orders/AMZ-111-0000001-0000003-01/cancel", json={})
    commerce.get("/V1/orders/1")
    amazon.client.get(sandbox.base_url + "/elsewhere")
    assert sandbox.requests == [
        ("amazon", "POST", "/amazon-auth/auth/o2/token", 200),
        ("amazon", "GET", "/orders/2026-01-01/orders/111-0000001-0000001", 200),
        ("vtex", "POST", "/api/oms/pvt/orders/AMZ-111-0000001-0000003-01/cancel", 200),
        ("adobe-commerce", "GET", "/V1/orders/1", 200),
        ("", "GET", "/elsewhere", 404),
    ]
    assert [r.method for r in sandbox.requests if r.system == "vtex"] == ["POST"]


def test_latency_switch(sandbox: Sandbox, commerce: Api) -> None:
    started = time.monotonic()
    commerce.get("/V1/orders/1")
    quick = time.monotonic() - started
    sandbox.latency = 0.3
    started = time.monotonic()
    commerce.get("/V1/orders/1")
    assert time.monotonic() - started >= 0.3 > quick


def test_latency_from_the_constructor(client: httpx.Client) -> None:
    with Sandbox(latency=0.2, orders="empty") as sandbox:
        started = time.monotonic()
        client.get(sandbox.base_url + "/vtex/api/oms/pvt/orders")
        assert time.monotonic() - started >= 0.2


def test_fail_next_answers_without_acting(sandbox: Sandbox, vtex: Api) -> None:
    path = "/api/oms/pvt/orders/AMZ-111-0000001-0000003-01/cancel"
    sandbox.faults.fail_next("vtex", "POST", r"/cancel$", 503, count=2)
    assert [vtex.post(path, json={}).status_code for _ in range(3)] == [503, 503, 200]
    assert sandbox.vtex.orders["AMZ-111-0000001-0000003-01"]["status"] == "canceled"
    assert [r.status for r in sandbox.requests] == [503, 503, 200]
    assert [kind for kind, _ in sandbox.faults.triggered] == ["fail", "fail"]


@pytest.mark.parametrize(("body", "headers", "expected"), [
    (None, None, {"errors": [{"code": "QuotaExceeded", "message": "Injected fault"}]}),
    ({"errors": [{"code": "QuotaExceeded", "message": "Slow down"}]}, {"Retry-After": "1"},
     {"errors": [{"code": "QuotaExceeded", "message": "Slow down"}]}),
])
def test_fail_next_body_and_headers(sandbox: Sandbox, amazon: Api, body: object,
                                    headers: dict[str, str] | None, expected: object) -> None:
    sandbox.faults.fail_next("amazon", "*", r"^/orders/2026-01-01/orders", 429, body=body,
                             headers=headers)
    response = amazon.get("/orders/2026-01-01/orders/111-0000001-0000001")
    assert response.status_code == 429 and response.json() == expected
    assert response.headers.get("Retry-After") == (headers or {}).get("Retry-After")
    assert amazon.get("/orders/2026-01-01/orders/111-0000001-0000001").status_code == 200


def test_drop_next_acts_then_closes_the_connection(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = sandbox.commerce.order_by_increment_id("112-0000002-0000004")
    assert entity_id is not None
    path = f"/V1/orders/{entity_id['entity_id']}/cancel"
    sandbox.faults.drop_next("adobe-commerce", "POST", "/cancel$")
    with pytest.raises(httpx.RemoteProtocolError):
        commerce.post(path)
    assert entity_id["state"] == "canceled"
    assert sandbox.requests[-1] == ("adobe-commerce", "POST", path, 0)
    assert commerce.post(path).json() is False  # the retry finds it already canceled


def test_faults_can_be_cleared(sandbox: Sandbox, commerce: Api) -> None:
    sandbox.faults.fail_next("adobe-commerce", "GET", ".", 500, count=5)
    sandbox.faults.clear()
    assert commerce.get("/V1/orders/1").status_code == 200


def test_generated_orders_are_deterministic() -> None:
    fixed = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    first = Sandbox(orders=60, now=lambda: fixed)
    second = Sandbox(orders=60, now=lambda: fixed)
    assert len(first.amazon.orders) == 60
    assert first.amazon.orders == second.amazon.orders
    assert first.vtex.orders == second.vtex.orders
    assert first.commerce.orders == second.commerce.orders
    prefixes = {order_id[:3] for order_id in first.amazon.orders}
    assert prefixes == {"211", "212", "213"}
    for vtex_id, order in first.vtex.orders.items():
        assert vtex_id == f"AMZ-{order['marketplaceOrderId']}-01"
        assert order["marketplaceOrderId"] in first.amazon.orders
    for order in first.commerce.orders.values():
        assert order["ext_order_id"] in first.amazon.orders
    other_seed = Sandbox(orders=60, now=lambda: fixed, seed=7)
    assert set(other_seed.amazon.orders).isdisjoint(first.amazon.orders)


def test_generated_orders_are_served(client: httpx.Client) -> None:
    with Sandbox(orders=250) as sandbox:
        settings = sandbox.settings()["amazon"]
        token = client.post(settings["token_url"], data={
            "grant_type": "refresh_token", "refresh_token": settings["refresh_token"],
            "client_id": settings["client_id"],
            "client_secret": settings["client_secret"]}).json()["access_token"]
        params = {"lastUpdatedAfter": "2000-01-01T00:00:00Z"}
        total = 0
        while True:
            body = client.get(settings["base_url"] + "/orders/2026-01-01/orders", params=params,
                              headers={"x-amz-access-token": token}).json()
            total += len(body["orders"])
            if "pagination" not in body:
                break
            params["paginationToken"] = body["pagination"]["nextToken"]
        assert total == 250


def test_empty_sandbox_and_bad_orders_argument() -> None:
    empty = Sandbox(orders="empty")
    assert not empty.amazon.orders and not empty.vtex.orders and not empty.commerce.orders
    with pytest.raises(ValueError):
        Sandbox(orders="everything")


def test_stop_closes_idle_keep_alive_connections() -> None:
    sandbox = Sandbox(orders="empty")
    sandbox.start()
    client = httpx.Client()
    try:
        assert client.get(sandbox.base_url + "/vtex/api/oms/pvt/orders").status_code == 401
    finally:
        sandbox.stop()  # the client's connection is still open here
        client.close()
    sandbox.stop()  # idempotent


def test_serve_prints_environment_lines() -> None:
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, kwargs={
        "port": 0, "orders": "empty", "print_line": lines.append, "stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert lines[0].startswith("# connector sandbox serving on http://127.0.0.1:")
    # exported: sourced or pasted into a shell, they reach the `connector` it starts
    assert any(line.startswith("export CONNECTOR_AMAZON_TOKEN_URL=http://127.0.0.1:")
               for line in lines)
    assert any(line.startswith("export CONNECTOR_ADOBE_COMMERCE_TOKEN=") for line in lines)


def test_module_entry_point_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_helpers_add_records_in_the_spec_shapes(sandbox: Sandbox, amazon: Api, vtex: Api,
                                                commerce: Api) -> None:
    order = sandbox.add_amazon_order("114-0000004-0000009", "UNSHIPPED",
                                     items=[("SKU-2", 2), ("SKU-3", 1)])
    params = {"lastUpdatedAfter": order["createdTime"]}
    assert amazon.get("/orders/2026-01-01/orders", params=params).json()["orders"] == []
    sandbox.advance(180)
    found = amazon.get("/orders/2026-01-01/orders", params=params).json()["orders"]
    assert [o["orderId"] for o in found] == ["114-0000004-0000009"]
    assert [i["quantityOrdered"] for i in found[0]["orderItems"]] == [2, 1]
    vtex_order = sandbox.add_vtex_order("111-0000001-0000007", "handling")
    assert vtex_order["orderId"] == "AMZ-111-0000001-0000007-01"
    got = vtex.get("/api/oms/pvt/orders/AMZ-111-0000001-0000007-01").json()
    assert got["marketplaceOrderId"] == "111-0000001-0000007" and got["status"] == "handling"
    imported = sandbox.add_commerce_order("112-0000002-0000002", invoiced=True, shipped=True)
    entity_id = imported["entity_id"]
    assert entity_id == max(sandbox.commerce.orders)
    assert imported["customer_email"] == "buyer2@example.com"
    shipments = commerce.get("/V1/shipments", params={
        "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
        "searchCriteria[filter_groups][0][filters][0][value]": str(entity_id)}).json()
    assert shipments["items"][0]["tracks"][0]["carrier_code"] == "ups"
    assert commerce.post(f"/V1/orders/{entity_id}/cancel").json() is False  # fully invoiced


def test_amazon_helpers_cancel_and_request(sandbox: Sandbox) -> None:
    sandbox.amazon.request_cancellation("113-0000003-0000004", "Found it cheaper")
    item = sandbox.amazon.orders["113-0000003-0000004"]["orderItems"][0]
    assert item["cancellation"] == {"cancellationRequest": {
        "requester": "BUYER", "cancelReason": "Found it cheaper"}}
    sandbox.amazon.cancel("113-0000003-0000004", by="BUYER")
    assert item["cancellation"]["cancellationExecution"] == {"cancelledBy": "BUYER"}
    sandbox.amazon.set_status("113-0000003-0000001", "SHIPPED")
    assert sandbox.amazon.orders["113-0000003-0000001"]["fulfillment"][
        "fulfillmentStatus"] == "SHIPPED"


def test_serve_shows_what_it_holds_and_logs_each_request() -> None:
    """`connector sandbox --orders 4 --log`: what it holds at the start, each request as it
    answers it, and at the end what it served and holds; all as '#' lines (sourceable)."""
    import httpx

    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, kwargs={
        "port": 0, "orders": 4, "log": True, "print_line": lines.append, "stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not any(line.startswith("# holds") for line in lines) and time.monotonic() < deadline:
            time.sleep(0.01)
        url = next(line.split("=", 1)[1] for line in lines
                   if line.startswith("export CONNECTOR_VTEX_BASE_URL="))
        httpx.get(f"{url}/api/oms/pvt/orders/nope", timeout=5)
        while not any(" vtex GET " in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert "# holds 4 Amazon, 0 Walmart, " in "\n".join(lines)
    (logged,) = [line for line in lines if " vtex GET " in line]
    assert logged.endswith(" vtex GET /api/oms/pvt/orders/nope 401") or logged.endswith(" 404"), logged
    assert lines[-1].startswith("# served 1 request(s): vtex 1; holds 4 Amazon")
    assert all(line.startswith(("#", "export ")) for line in lines)
