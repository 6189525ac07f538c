"""lookup: the counterpart of a source order — found, absent (404 or a null `found`), errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_systems import APP_KEY, APP_TOKEN, World, harness, vtex_order

from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError
from connector.transport.http import RetriesExhausted, Transport, new_client
from connector.lookup import find_counterpart
from connector.normalise import canonical
from connector.project import load_config, require
from connector.render import Redactor

ORDER = canonical({"id": "902-1", "status": "CANCELLED"}, "amazon")


def test_found_is_normalised(tmp_path: Path) -> None:
    world = World(vtex={"AMZ-902-1-01": vtex_order("AMZ-902-1-01", "handling")})
    with harness(world, tmp_path / "s.db") as h:
        found = find_counterpart(h.clients["vtex"], "amazon", ORDER)
    assert found is not None
    assert (found["id"], found["system"], found["status"]) == ("AMZ-902-1-01", "vtex", "handling")
    assert found["attributes"] == {"marketplace_order_id": "902-1"}
    assert found["items"][0]["sku"] == "SKU-1"
    (request,) = world.requests
    assert request.method == "GET"
    assert request.url.path == "/api/oms/pvt/orders/AMZ-902-1-01"
    assert request.headers["X-VTEX-API-AppKey"] == APP_KEY
    assert request.headers["X-VTEX-API-AppToken"] == APP_TOKEN


def test_not_found_status_is_none(tmp_path: Path) -> None:
    world = World()
    with harness(world, tmp_path / "s.db") as h:
        assert find_counterpart(h.clients["vtex"], "amazon", ORDER) is None
    assert len(world.requests) == 1  # a 404 is an answer, not retried


def test_order_id_cannot_change_the_path(tmp_path: Path) -> None:
    world = World()
    with harness(world, tmp_path / "s.db") as h:
        find_counterpart(h.clients["vtex"], "amazon", {**ORDER, "id": "../../x?y=1"})
    assert world.requests[0].url.raw_path == b"/api/oms/pvt/orders/AMZ-..%2F..%2Fx%3Fy%3D1-01"


SEARCH_MAPPING = """\
system: shop
connection:
  base_url: https://shop.example.com
  auth: {kind: none}
  # the shop's error bodies are {message, parameters} with placeholders
  error_message: "placeholders(message, parameters)"
domains: {status: [new, canceled]}
orders:
  lookup:
    amazon:
      request:
        method: GET
        path: /rest/V1/orders
        query: {"searchCriteria[filter_groups][0][filters][0][value]": "{{ order.id }}"}
      found: "items[0]"
      not_found_status: [404, 410]
normalise: {id: entity_id, status: state}
"""


def _shop(
    tmp_path: Path, answer: httpx.Response
) -> tuple[SystemClient, Transport, list[httpx.Request]]:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "shop.yaml").write_text(SEARCH_MAPPING)
    config = require(load_config(tmp_path))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    transport = Transport(new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None)
    return SystemClient(config.systems["shop"], {}, transport, Redactor()), transport, seen


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"items": [{"entity_id": 7, "state": "new"}], "total_count": 1}, ("7", "new")),
        (200, {"items": [], "total_count": 0}, None),  # `found` gives null
        (200, {"items": [{}], "total_count": 1}, None),  # an empty record is no order
        (200, {}, None),
        (404, {"message": "not found"}, None),
        (410, {"message": "gone"}, None),  # any declared not_found_status
    ],
)
def test_found_expression(
    tmp_path: Path, status: int, body: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    client, transport, seen = _shop(tmp_path, httpx.Response(status, json=body))
    with transport:
        found = find_counterpart(client, "amazon", ORDER)
    if expected is None:
        assert found is None
    else:
        assert found is not None and (found["id"], found["status"]) == expected
    assert seen[0].url.params["searchCriteria[filter_groups][0][filters][0][value]"] == "902-1"


def test_server_error_after_retries_raises(tmp_path: Path) -> None:
    client, transport, seen = _shop(
        tmp_path, httpx.Response(500, json={"message": "Internal Error"})
    )
    with transport, pytest.raises(HTTPError) as caught:
        find_counterpart(client, "amazon", ORDER)
    assert isinstance(caught.value, RetriesExhausted)
    assert len(seen) == 5  # a read is retried, then given up
    assert "gave up after 5 attempts: 500 Internal Server Error" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"message": '"%fieldName" is required.', "parameters": {"fieldName": "searchCriteria"}},
            'shop answered 400: "searchCriteria" is required.',
        ),
        (
            401,
            {
                "message": "The consumer isn't authorized to access %resources.",
                "parameters": {"resources": "Magento_Sales::sales"},
            },
            "shop answered 401: The consumer isn't authorized to access Magento_Sales::sales.",
        ),
    ],
)
def test_client_error_raises_with_the_remote_message(
    tmp_path: Path, status: int, body: dict[str, Any], expected: str
) -> None:
    client, transport, seen = _shop(tmp_path, httpx.Response(status, json=body))
    with transport, pytest.raises(HTTPError) as caught:
        find_counterpart(client, "amazon", ORDER)
    assert str(caught.value) == f"looking up the shop order of 902-1: {expected}"
    assert len(seen) == 1  # 4xx is not retried


def test_vtex_error_message(tmp_path: Path) -> None:
    world = World(vtex={"AMZ-902-1-01": vtex_order("AMZ-902-1-01", "handling")})
    with harness(world, tmp_path / "s.db") as h:
        h.clients["vtex"].settings["app_token"] = "wrong"  # the mock answers 401
        with pytest.raises(HTTPError) as caught:
            find_counterpart(h.clients["vtex"], "amazon", ORDER)
    assert "vtex answered 401: 1: Unauthorized" in str(caught.value)


def test_unknown_source_system_is_a_configuration_error(tmp_path: Path) -> None:
    world = World()
    with (
        harness(world, tmp_path / "s.db") as h,
        pytest.raises(ConnectorError, match="orders.lookup.shopify"),
    ):
        find_counterpart(h.clients["vtex"], "shopify", ORDER)
    assert world.requests == []
