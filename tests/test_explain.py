"""`connector explain`: what it shows of the counterpart, the records it refuses, the steps it renders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "docs" / "examples"
ORDERS = Path(__file__).parent / "fixtures" / "orders"


def _explain(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["explain", "--project", str(ROOT), *args])
    return result.exit_code, result.output


def test_counterpart_shown_by_its_id_not_its_whole_record() -> None:
    code, out = _explain(str(EXAMPLES / "amazon-order-cancelled.json"), "--flow", "amazon-to-vtex",
                         "--target", str(EXAMPLES / "vtex-order-handling.json"))
    assert code == 0, out
    assert "because target exists (is vtex record 'AMZ-202-1234567-8901234-01')" in out
    assert "'raw'" not in out and "MATCH cancel-in-vtex" in out
    assert "(is 'handling')" in out


@pytest.mark.parametrize(
    ("record", "missing"),
    [
        (ORDERS / "amazon-order-v0.json",
         "no order id (the mapping reads it from 'orderId'); the record's top-level keys are: AmazonOrderId"),
        (ORDERS / "amazon-search-orders.json",
         "no order id (the mapping reads it from 'orderId'); this looks like a list response "
         "('orders' holds 1 record)"),
        ({"orderId": "1", "fulfillment": {"fulfillmentStatus": "SHIPPD"}},
         "order 1: status 'SHIPPD' (read from 'fulfillment.fulfillmentStatus') is not one the amazon "
         "mapping declares"),
        ({"id": "1", "status": None}, "order 1: no status (the 'status' key)"),
    ],
)
def test_refuses_what_it_cannot_read(tmp_path: Path, record: Path | dict[str, object], missing: str) -> None:
    if isinstance(record, dict):
        path = tmp_path / "order.json"
        path.write_text(json.dumps(record))
        record = path
    code, out = _explain(str(record), "--flow", "amazon-to-vtex")
    assert code == 2, out
    assert missing in out and "no rule matched" not in out and "Traceback" not in out


def test_steps_after_earlier_responses_are_rendered_with_placeholders(tmp_path: Path) -> None:
    commerce = tmp_path / "commerce.json"
    commerce.write_text(json.dumps({"id": "000000123", "status": "canceled",
                                    "attributes": {"ext_order_id": "202-1234567-8901234"}}))
    amazon = tmp_path / "amazon.json"
    amazon.write_text(json.dumps({"id": "202-1234567-8901234", "status": "UNSHIPPED",
                                  "fulfilment": "merchant",
                                  "items": [{"id": "20212345678901", "sku": "S", "quantity": 1}]}))
    code, out = _explain(str(commerce), "--flow", "adobe-commerce-to-amazon", "--target", str(amazon))
    assert code == 0, out
    upload = out[out.index("step upload:"):out.index("step create_feed:")]
    assert "PUT <steps.create_document.url>" in upload
    assert "x-amz-access-token" not in upload  # a presigned URL gets no auth header
    assert "<AmazonOrderID>202-1234567-8901234</AmazonOrderID>" in upload
    assert "<AmazonOrderItemCode>20212345678901</AmazonOrderItemCode>" in upload
    assert '"inputFeedDocumentId": "<steps.create_document.feedDocumentId>"' in out
    assert "/feeds/2021-06-30/feeds/<steps.create_feed.feedId>" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": "1", "status": "CANCELLED", "items": [42]}',
         "order field 'items[0]' is a number, not an object"),
        ('{"id": "1", "status": "CANCELLED", "items": {"sku": "A"}}',
         "order field 'items' is an object, not a list of objects"),
        ('{"id": "1", "status": "CANCELLED", "buyer": "x"}',
         "order field 'buyer' is a string, not an object"),
        ('{"id": "1", "status": "CANCELLED", "attributes": [1]}',
         "order field 'attributes' is a list, not an object"),
        ("[" * 1000 + "]" * 1000, "JSON nested deeper than 64 levels"),
        ('{"id": "1", "status": "CANCELLED", "raw": ' + '{"a": ' * 100 + "1" + "}" * 101,
         "JSON nested deeper than 64 levels at raw.a.a"),
    ],
)
def test_wrong_typed_or_too_deep_orders_are_a_clear_error(tmp_path: Path, text: str,
                                                          message: str) -> None:
    path = tmp_path / "order.json"
    path.write_text(text)
    code, out = _explain(str(path), "--flow", "amazon-to-vtex")
    assert code == 2, out
    assert f"error: {path}: {message}" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("order_id", "shown"),
    [("\ud800", "order \\ud800 (amazon)"), ("1\x1b[2J\rMATCH", "order 1\\x1b[2J\\rMATCH (amazon)")],
)
def test_order_data_is_printed_as_data(tmp_path: Path, order_id: str, shown: str) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps({"id": order_id, "status": "CANCELLED", "actor": "seller"}))
    result = CliRunner().invoke(main, ["explain", "--project", str(ROOT), str(path),
                                       "--flow", "amazon-to-vtex"])
    assert result.exit_code == 0, result.output
    assert shown in result.output and "\x1b" not in result.output and "\r" not in result.output


@pytest.mark.parametrize("shown", ["settings.app_key | join('-')", "settings.app_key | reverse | join",
                                   "settings.app_key | list"])
def test_a_secret_transformed_by_a_template_is_not_printed(tmp_path: Path, shown: str) -> None:
    """explain printed `S-E-C-R-E-T-...` for the first: masking knew only the value as set."""
    import shutil

    for name in ("connector.yaml", "mappings", "rules"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    mapping = tmp_path / "mappings" / "vtex.yaml"
    text = mapping.read_text()
    mapping.write_text(text.replace('          reason: "{{ args.reason }}"',
                                    '          reason: "{{ args.reason }}"\n'
                                    f'          note: "{{{{ {shown} }}}}"', 1))
    assert mapping.read_text() != text
    result = CliRunner().invoke(
        main, ["explain", "--project", str(tmp_path), str(EXAMPLES / "amazon-order-cancelled.json"),
               "--flow", "amazon-to-vtex", "--target", str(EXAMPLES / "vtex-order-handling.json")],
        env={"CONNECTOR_VTEX_APP_KEY": "SECRETKEY", "CONNECTOR_VTEX_ACCOUNT": "shop"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "step cancel:" in out and "settings.app_key is a secret" in out
    for spelling in ("S-E-C", "YEKTERCES", "'S', 'E'", "SECRETKEY"):
        assert spelling not in out
