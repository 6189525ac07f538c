from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import TemplateError
from connector.model import Request
from connector.project import load_config, require
from connector.render import Redactor, render_request, show

FIXTURE = Path(__file__).parent / "fixtures" / "valid"


@pytest.fixture(scope="module")
def vtex():  # type: ignore[no-untyped-def]
    return require(load_config(FIXTURE)).systems["vtex"]


SETTINGS = {"account": "shop", "base_url": "", "app_key": "k3y-secret", "app_token": "t0ken-secret"}


@pytest.mark.parametrize(
    "order_id",
    ["../../admin", "x?y=1", "a#b", "https://evil.example/x", "%2F..%2F", "a\r\nHost: evil"],
)
def test_order_data_cannot_change_host_or_path(vtex, order_id: str) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="POST", path="/api/oms/pvt/orders/{{ order.id }}/cancel")
    rendered = render_request(vtex, request, {"order": {"id": order_id}}, SETTINGS)
    assert rendered.url.startswith("https://shop.vtexcommercestable.com.br/api/oms/pvt/orders/")
    assert rendered.url.endswith("/cancel")
    assert rendered.url.count("/") == 8


def test_header_injection_refused(vtex) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="GET", path="/x", headers={"X-Note": "{{ order.id }}"})
    with pytest.raises(TemplateError, match="line break"):
        render_request(vtex, request, {"order": {"id": "a\r\nX-Evil: 1"}}, SETTINGS)


def test_json_body_structure_cannot_be_changed(vtex) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="POST", path="/x", json={"reason": "{{ args.reason }}"})
    rendered = render_request(vtex, request, {"args": {"reason": '", "admin": true, "x": "'}}, SETTINGS)
    assert rendered.json == {"reason": '", "admin": true, "x": "'}
    assert rendered.body_bytes() == b'{"reason": "\\", \\"admin\\": true, \\"x\\": \\""}'


def test_base_url_from_settings_and_override(vtex) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="GET", path="/api/x")
    local = {**SETTINGS, "base_url": "http://127.0.0.1:9/vtex"}
    assert render_request(vtex, request, {}, local).url == "http://127.0.0.1:9/vtex/api/x"


def test_show_masks_secrets(vtex) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="GET", path="/x")
    rendered = render_request(vtex, request, {}, SETTINGS, vtex.auth.headers)
    text = show(rendered, Redactor().extended(["k3y-secret", "t0ken-secret"]))
    assert "k3y-secret" not in text and "t0ken-secret" not in text and "****" in text


def test_query_lists_and_empty_values(vtex) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="GET", path="/x", query={"ids": "{{ ids | join(',') }}", "empty": "", "n": 5})
    rendered = render_request(vtex, request, {"ids": ["A", "B"]}, SETTINGS)
    assert rendered.params == (("ids", "A,B"), ("n", "5"))


def test_json_leaf_without_a_value_is_left_out(vtex) -> None:  # type: ignore[no-untyped-def]
    request = Request(method="POST", path="/x", json={
        "a": "{{ order.company }}", "b": "{{ order.region or 'none' }}", "chosen": None,
        "nested": {"c": "{{ order.company }}", "d": "x{{ order.company }}"},
        "list": ["{{ order.company }}"]})
    rendered = render_request(vtex, request, {"order": {"company": None, "region": None}}, SETTINGS)
    # the template without a value is left out; a YAML null is a choice and is sent; a
    # list keeps its positions; a leaf with text around the value renders to a string
    assert rendered.json == {"b": "none", "chosen": None, "nested": {"d": "x"}, "list": [None]}


ROOT = Path(__file__).parent.parent


def _commerce_create_body(raw: dict) -> dict:  # type: ignore[type-arg]
    from connector.normalise import normalise

    config = require(load_config(ROOT))
    commerce = config.systems["adobe-commerce"]
    source = normalise(config.systems["amazon"], raw)
    action = commerce.actions["create_order"]
    step = next(s for s in action.steps if s.name == "create")
    args = {n: p.default for n, p in action.params.items()}
    context = {"order": source, "source": source, "target": None, "args": args, "steps": {},
               "outputs": {}, "now": "2026-01-01T00:00:00Z"}
    settings = {"base_url": "http://commerce.test/rest/default", "token": "t", "store_id": 1,
                "website_id": 1, "customer_creation": "guest"}
    rendered = render_request(commerce, step.request, context, settings)
    return rendered.json["entity"]  # type: ignore[no-any-return]


def _nulls(value: object, where: str = "") -> list[str]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls(v, f"{where}[{i}]")]
    return [where] if value is None else []


def test_guest_commerce_order_without_company_or_region_sends_no_null() -> None:
    import json

    raw = json.loads((FIXTURE.parent / "orders" / "amazon-search-orders.json").read_text())
    order = raw["orders"][0]
    address = order["recipient"]["deliveryAddress"]
    address.pop("companyName", None)
    address.pop("stateOrRegion", None)
    entity = _commerce_create_body(order)
    assert _nulls(entity) == []
    assert "customer_id" not in entity
    assert "company" not in entity["billing_address"] and "region" not in entity["billing_address"]
    shipping = entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
    assert "company" not in shipping and "region" not in shipping
    assert entity["customer_is_guest"] == 1 and entity["billing_address"]["city"] == "Seattle"


@pytest.mark.parametrize(
    "template",
    ["{{ settings.app_key | join('-') }}", "{{ settings.app_key | reverse | join }}",
     "{{ settings.app_key | list }}", "{{ settings.app_key | upper }}",
     "{{ settings.app_key | replace('s', 'S') }}", "{{ settings.app_key[0] }}",
     "{{ '%s!' % settings.app_key }}", "{{ settings.app_key | tojson }}",
     "{{ settings.app_key | first }}", "{{ (settings.app_key ~ 'x') | lower }}"],
)
def test_a_secret_cannot_be_transformed(vtex, template: str) -> None:  # type: ignore[no-untyped-def]
    """`explain` printed `k-3-y---s-e-c-r-e-t` past the masking for the first of these."""
    for request in (Request(method="GET", path="/x", headers={"X-Shown": template}),
                    Request(method="POST", path="/x", json={"shown": template})):
        with pytest.raises(TemplateError) as caught:
            render_request(vtex, request, {}, SETTINGS)
        message = str(caught.value)
        assert "k3y" not in message and "3-y" not in message and "terces" not in message
        assert "settings.app_key is a secret" in message or "undefined" in message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ settings.app_key }}", "k3y-secret"),
        ("Key {{ settings.app_key }}", "Key k3y-secret"),
        ("{{ 'Bearer ' ~ settings.app_key }}", "Bearer k3y-secret"),
        ("{{ (settings.account ~ ':' ~ settings.app_key) | b64encode }}", "c2hvcDprM3ktc2VjcmV0"),
        ("{{ 'yes' if settings.app_key else 'no' }}", "yes"),
        ("{{ 'same' if settings.app_key == 'k3y-secret' else 'not' }}", "same"),
    ],
)
def test_a_secret_renders_as_it_is_where_a_request_needs_it(vtex, template: str,  # type: ignore[no-untyped-def]
                                                             expected: str) -> None:
    request = Request(method="POST", path="/x", headers={"X-Key": template},
                      json={"key": template, "nested": {"list": [template]}})
    rendered = render_request(vtex, request, {}, SETTINGS)
    assert dict(rendered.headers)["X-Key"] == expected
    assert rendered.json == {"key": expected, "nested": {"list": [expected]}}
    rendered.body_bytes()  # plain data, JSON-encodable
