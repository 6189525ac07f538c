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
