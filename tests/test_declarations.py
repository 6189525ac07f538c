"""What a mapping declares about its server's protocol reaches the engine, for a system the
engine has never heard of: a fictional `acme` mapping, written here in YAML only, whose rate
header, error bodies, partitions and secret headers are all its own."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector import build
from connector.transport.cassette import recorder
from connector.transport.client import SystemClient
from connector.transport.http import HttpResponse, RetryPolicy, Transport, error_message, new_client
from connector.load import load_text
from connector.model import Request, System
from connector.project import Config, load_config, require
from connector.transport.ratelimit import RateLimiter
from connector.render import MASK, Redactor, secret_headers
from connector.schema import check as schema_check
from connector.state.store import open_store
from connector.worker import Fleet, partitions

ACME = """\
system: acme
settings:
  api_key: {required: true, secret: true}
  region: {default: eu}
connection:
  base_url: https://acme.example.com
  headers: {Accept: application/json, X-Acme-Region: "{{ settings.region }}"}
  auth:
    kind: headers
    headers:
      X-Acme-Key: "{{ settings.api_key }}"
  rate_limit_headers: [X-Acme-Rate, X-Acme-Rate-Fallback]
domains:
  status: [open, closed]
normalise:
  id: id
  status: state
"""
KEY = "acme-secret-key-0001"
REPO = Path(__file__).parent.parent
GET = Request(method="GET", path="/orders/{{ id }}", operation="getOrder")


def acme(text: str = ACME) -> System:
    """The fictional mapping, schema-checked and built as `connector` loads any mapping."""
    doc, problems = load_text(text, "mappings/acme.yaml")
    assert doc is not None and not problems
    assert schema_check(doc, "mapping") == []
    return build.system(doc)


def client(answer: Callable[[httpx.Request], httpx.Response],
           limiter: RateLimiter | None = None, system: System | None = None) -> SystemClient:
    transport = Transport(new_client(transport=httpx.MockTransport(answer)),
                          limiter=limiter or RateLimiter(), retry=RetryPolicy(max_attempts=1),
                          sleep=lambda seconds: None)
    return SystemClient(system or acme(), {"api_key": KEY, "region": "eu"}, transport,
                        Redactor().extended([KEY]))


@pytest.mark.parametrize(("headers", "learned"), [
    ({"X-Acme-Rate": "2.5"}, 2.5),
    ({"X-Acme-Rate-Fallback": "0.5"}, 0.5),
    ({"x-amzn-RateLimit-Limit": "9"}, None),  # another server's header: not this mapping's
    ({}, None),
])
def test_the_mappings_rate_header_sets_the_rate(headers: dict[str, str],
                                                learned: float | None) -> None:
    limiter = RateLimiter()
    acme_client = client(lambda request: httpx.Response(200, json={}, headers=headers), limiter)
    assert acme_client.send(GET, {"id": "1"}).status == 200
    assert limiter.rate("acme", "getOrder") == learned



@pytest.fixture(scope="module")
def shipped() -> dict[str, System]:
    return require(load_config(REPO)).systems


@pytest.mark.parametrize(("system", "headers"), [
    ("amazon", ("x-amzn-RateLimit-Limit",)),  # SP-API research §7
    ("walmart", ()),  # the spec and research §8 name no rate header
    ("vtex", ()),  # the OMS and Logistics docs name none (Ratelimit-* is the Pricing API's)
    ("adobe-commerce", ()),  # Magento publishes no rate limits
])
def test_shipped_rate_headers(shipped: dict[str, System], system: str,
                              headers: tuple[str, ...]) -> None:
    assert shipped[system].rate_limit_headers == headers


# --- error bodies: each shipped mapping's error_message, on its server's bodies -------------


def _body(status: int, body: Any) -> HttpResponse:
    return HttpResponse(status=status, headers={"content-type": "application/json"},
                        body=json.dumps(body).encode())


@pytest.mark.parametrize(("system", "status", "body", "expected"), [
    ("vtex", 409, {"error": {"code": "OMS003", "message": "Order status should be "
                             "ready-for-handling to perform this action", "exception": None}},
     "OMS003: Order status should be ready-for-handling to perform this action"),
    ("vtex", 400, {"code": "SOI003", "message": "Order integration failed", "errors": [
        {"source": "Fulfillment", "code": "FMT005", "description": "No stock"}]},
     "SOI003: Order integration failed; FMT005: No stock"),
    ("adobe-commerce", 400, {"message": "Invalid product data: %1", "parameters": ["sku missing"]},
     "Invalid product data: sku missing"),
    ("adobe-commerce", 400, {"message": "%fieldName is a required field.",
                             "parameters": {"fieldName": "email"}},
     "email is a required field."),
    ("adobe-commerce", 400, {"message": "%1 of %10", "parameters": list("abcdefghij")}, "a of j"),
    ("adobe-commerce", 400, {"message": "Validation failed", "errors": [
        {"message": "%1 is required", "parameters": ["sku"]},
        {"message": "%name too long", "parameters": {"name": "title"}}]},
     "Validation failed; sku is required; title too long"),
    ("adobe-commerce", 404, {"message": "No such entity with %fieldName = %fieldValue",
                             "parameters": {"fieldName": "orderId", "fieldValue": 42}},
     "No such entity with orderId = 42"),
    ("adobe-commerce", 400, {"code": 5, "message": "%1 is required", "parameters": ["sku"]},
     "sku is required"),  # a numeric code: the second declaration
    ("amazon", 429, {"errors": [{"code": "QuotaExceeded",
                                 "message": "You exceeded your quota for the requested resource."}]},
     "QuotaExceeded: You exceeded your quota for the requested resource."),
    ("amazon", 400, {"errors": [{"code": "InvalidInput", "message": "Bad id", "details": "id"}]},
     "InvalidInput: Bad id (id)"),
    ("amazon", 400, {"error": "invalid_grant", "error_description": "The token is expired"},
     "invalid_grant: The token is expired"),
    ("walmart", 400, {"errors": {"error": [{
        "code": "INVALID_REQUEST_CONTENT.GMP_ORDER_API", "field": "lineNumber",
        "description": "line 3 is not on the order", "severity": "ERROR", "category": "DATA",
        "causes": [], "errorIdentifiers": {}}]}},
     "INVALID_REQUEST_CONTENT.GMP_ORDER_API: line 3 is not on the order"),
    ("walmart", 401, {"error": [{"code": "UNAUTHORIZED.GMP_GATEWAY_API", "field": "UNAUTHORIZED",
                                 "description": "Unauthorized", "severity": "ERROR"}]},
     "UNAUTHORIZED.GMP_GATEWAY_API: Unauthorized"),
    ("walmart", 503, {"unexpected": True}, '{"unexpected": true}'),  # no words: the body
])
def test_shipped_error_messages(shipped: dict[str, System], system: str, status: int,
                                body: Any, expected: str) -> None:
    assert error_message(_body(status, body), shipped[system].error_messages) == expected


def test_a_mappings_error_words_reach_the_summary() -> None:
    text = ACME.replace("  rate_limit_headers:", "  error_message: [fault.reason, fault]\n"
                        "  rate_limit_headers:")
    answers = iter([httpx.Response(409, json={"fault": {"reason": "order is locked"}}),
                    httpx.Response(409, json={"fault": "busy"})])
    acme_client = client(lambda request: next(answers), system=acme(text))
    said = [acme_client.describe_error(acme_client.send(GET, {"id": "1"})) for _ in range(2)]
    assert said == ["acme answered 409: order is locked", "acme answered 409: busy"]


# --- partitions: the setting a mapping or flow names, nothing built in -----------------------


def _with(config: Config, flow: str, **changes: Any) -> Config:
    flows = {**config.flows, flow: dataclasses.replace(config.flows[flow], **changes)}
    return dataclasses.replace(config, flows=flows)


@pytest.mark.parametrize(("flow", "partition_by", "env", "expected"), [
    # the Amazon mapping's partition_by: marketplace_ids
    ("amazon-to-vtex", "", {"CONNECTOR_AMAZON_MARKETPLACE_IDS": "A1,A2"}, ["A1", "A2"]),
    # Walmart's mapping names none: one partition, whatever list settings it has
    ("walmart-to-vtex", "", {}, [""]),
    # a flow's own partition_by: a list setting of its source
    ("walmart-to-vtex", "ship_node_types", {"CONNECTOR_WALMART_SHIP_NODE_TYPES": "A,B,A"},
     ["A", "B"]),
])
def test_partitions_follow_the_declared_setting(flow: str, partition_by: str, env: dict[str, str],
                                                expected: list[str]) -> None:
    config = _with(require(load_config(REPO)), flow, partition_by=partition_by)
    assert [part for name, part in partitions(config, env) if name == flow] == expected


def test_a_partition_run_sees_its_own_value_only(tmp_path: Path) -> None:
    config = _with(require(load_config(REPO)), "walmart-to-vtex", partition_by="ship_node_types")
    env = {"CONNECTOR_WALMART_CLIENT_ID": "id", "CONNECTOR_WALMART_CLIENT_SECRET": "s3cret-1",
           "CONNECTOR_VTEX_ACCOUNT": "shop", "CONNECTOR_VTEX_APP_KEY": "k3y-1",
           "CONNECTOR_VTEX_APP_TOKEN": "t0ken-1", "CONNECTOR_AMAZON_CLIENT_ID": "a",
           "CONNECTOR_AMAZON_CLIENT_SECRET": "s3cret-2", "CONNECTOR_AMAZON_REFRESH_TOKEN": "r-1",
           "CONNECTOR_ADOBE_COMMERCE_BASE_URL": "http://127.0.0.1:1/rest/default",
           "CONNECTOR_ADOBE_COMMERCE_TOKEN": "t0ken-2"}
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        fleet = Fleet(config, env, store, StringIO())
        try:
            runtime = fleet._runtime("walmart-to-vtex", "WFSFulfilled")
        finally:
            fleet.close()
    assert runtime.system_settings["walmart"]["ship_node_types"] == ["WFSFulfilled"]


# --- secret headers: derived from each mapping's auth section --------------------------------


@pytest.mark.parametrize(("system", "headers"), [
    ("amazon", ("x-amz-access-token",)),  # {{ token }}
    ("vtex", ("x-vtex-api-appkey", "x-vtex-api-apptoken")),  # secret settings
    ("adobe-commerce", ("authorization",)),
    ("walmart", ("authorization", "wm_sec.access_token")),  # Basic of the secret; the token
])
def test_shipped_secret_headers(shipped: dict[str, System], system: str,
                                headers: tuple[str, ...]) -> None:
    assert secret_headers(shipped[system]) == headers


def test_a_mappings_own_secret_header_never_reaches_a_cassette(tmp_path: Path) -> None:
    """The redactor knows the header's name only (not the key's value): the name, derived
    from the fictional mapping's auth section, is what keeps the key out of the file, out of
    the echo in the answer, and out of the error."""
    system = acme()
    assert secret_headers(system) == ("x-acme-key",)  # X-Acme-Region reads no secret
    redact = Redactor().with_headers(secret_headers(system))

    def echo(request: httpx.Request) -> httpx.Response:
        key = request.headers["X-Acme-Key"]
        return httpx.Response(403, json={"fault": f"key {key} refused"},
                              headers={"X-Acme-Key": key})

    path = tmp_path / "run.yaml"
    transport = Transport(new_client(transport=httpx.MockTransport(echo)),
                          retry=RetryPolicy(max_attempts=1), sleep=lambda seconds: None)
    acme_client = SystemClient(system, {"api_key": KEY, "region": "eu"}, transport,
                               Redactor().extended([KEY]))
    with transport, recorder(path, redact):
        said = acme_client.describe_error(acme_client.send(GET, {"id": "1"}))
    text = path.read_text()
    assert KEY not in text
    (interaction,) = yaml.safe_load(text)["interactions"]
    assert interaction["request"]["headers"]["x-acme-key"] == [MASK]
    assert interaction["request"]["headers"]["x-acme-region"] == ["eu"]  # not a secret: kept
    assert interaction["response"]["headers"]["x-acme-key"] == [MASK]
    assert KEY not in said and MASK in said
