"""What a mapping declares about its server's protocol reaches the engine, for a system the
engine has never heard of: a fictional `acme` mapping, written here in YAML only, whose rate
header, error bodies, partitions and secret headers are all its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connector import build
from connector.client import SystemClient
from connector.http import RetryPolicy, Transport, new_client
from connector.load import load_text
from connector.model import Request, System
from connector.project import load_config, require
from connector.ratelimit import RateLimiter
from connector.render import Redactor
from connector.schema import check as schema_check

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
GET = Request(method="GET", path="/orders/{{ id }}", operation="getOrder")


def acme(text: str = ACME) -> System:
    """The fictional mapping, schema-checked and built as `connector` loads any mapping."""
    doc, problems = load_text(text, "mappings/acme.yaml")
    assert doc is not None and not problems
    assert schema_check(doc, "mapping") == []
    return build.system(doc)


def client(answer: Callable[[httpx.Request], httpx.Response],
           limiter: RateLimiter | None = None) -> SystemClient:
    transport = Transport(new_client(transport=httpx.MockTransport(answer)),
                          limiter=limiter or RateLimiter(), retry=RetryPolicy(max_attempts=1),
                          sleep=lambda seconds: None)
    return SystemClient(acme(), {"api_key": KEY, "region": "eu"}, transport,
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
    return require(load_config(Path(__file__).parent.parent)).systems


@pytest.mark.parametrize(("system", "headers"), [
    ("amazon", ("x-amzn-RateLimit-Limit",)),  # SP-API research §7
    ("walmart", ()),  # the spec and research §8 name no rate header
    ("vtex", ()),  # the OMS and Logistics docs name none (Ratelimit-* is the Pricing API's)
    ("adobe-commerce", ()),  # Magento publishes no rate limits
])
def test_shipped_rate_headers(shipped: dict[str, System], system: str,
                              headers: tuple[str, ...]) -> None:
    assert shipped[system].rate_limit_headers == headers
