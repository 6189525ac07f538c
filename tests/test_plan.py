"""Planning: the keys and arguments `plan_call` works out from its per-call preparation are
those of the plain formulas (`idempotency_key`, `render_value`), order after order."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from connector.normalise import canonical
from connector.plan import FlowRuntime, idempotency_key, plan_order, prepare
from connector.project import load_config, require

FIXTURES = Path(__file__).parent / "fixtures" / "valid"

RULES = """
source: amazon
target: vtex
hit_policy: all
rules:
  - id: constant
    when: {status: CANCELLED}
    then:
      - cancel_order: {reason: "Fermé — à rembourser"}
      - report: {}
      - watch: {}
      - report: {message: "nested", lines: [1, {a: [2, 3]}], level: attention}
  - id: templated
    when: {status: CANCELLED, actor: {in: [seller, amazon]}}
    then:
      - cancel_order: {reason: "by {{ actor }}"}
      - report: {message: "{{ target.id if target else 'none' }}", count: "{{ items | length }}"}
      - reserve_stock
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> FlowRuntime:
    project = tmp_path_factory.mktemp("plan")
    (project / "rules").mkdir()
    (project / "rules" / "amazon-to-vtex.yaml").write_text(RULES, encoding="utf-8")
    (project / "mappings").symlink_to(FIXTURES / "mappings")
    return prepare(require(load_config(project)), "amazon-to-vtex", {})


ORDERS = [
    ({"id": "902-1", "actor": "seller", "updated_at": "2026-11-01T00:00:00Z"},
     {"id": "T-1", "status": "handling"}),
    ({"id": "902-2", "actor": "amazon", "updated_at": None}, None),
    ({"id": "ü-ñ\u2028", "actor": "customer", "updated_at": "2026-11-02T00:00:00Z"},
     {"id": "T-3", "status": "canceled"}),
    ({"id": "902-4", "actor": "seller", "updated_at": "2026-11-03T00:00:00+02:00"},
     {"id": "T-4", "status": "invoiced"}),
]
NOW = "2026-11-01T00:00:00Z"


@pytest.mark.parametrize(("fields", "target"), ORDERS)
def test_keys_are_idempotency_keys(runtime: FlowRuntime, fields: dict[str, Any],
                                   target: dict[str, Any] | None) -> None:
    order = canonical({"status": "CANCELLED", "fulfilment": "merchant",
                       "items": [{"sku": "A", "quantity": 1}], **fields}, runtime.source)
    counterpart = canonical(target, runtime.target) if target else None
    for _ in range(2):  # the second time from the prepared calls
        planned, _ = plan_order(runtime, order, counterpart, {}, NOW)
        assert len(planned) >= 4
        for item in planned:
            on_source = item.action is not None and item.system == runtime.flow.source
            subject = order if on_source else counterpart
            assert item.key == idempotency_key(runtime.flow.name, order, item.name, item.args,
                                               subject)


@pytest.mark.parametrize("updated", [datetime(2026, 11, 1, tzinfo=timezone.utc), 1.5, -0.0,
                                     True, None, "x"])
@pytest.mark.parametrize("order_id", [902, None, 1.0, "902"])
def test_keys_of_any_field_type(runtime: FlowRuntime, order_id: Any, updated: Any) -> None:
    """Order fields that are not strings are written as `json.dumps(default=str)` does."""
    order = {"id": order_id, "status": "CANCELLED", "actor": "seller", "updated_at": updated,
             "items": []}
    target = {"id": 7, "status": "handling"}  # (an undeclared status is refused before planning)
    planned, _ = plan_order(runtime, order, target, {}, NOW)
    for item in planned:
        subject = target if item.system != runtime.flow.source else order
        assert item.key == idempotency_key(runtime.flow.name, order, item.name, item.args,
                                           subject)


def test_arguments_are_fresh_per_order(runtime: FlowRuntime) -> None:
    """Constant arguments are rendered once, but no two planned actions share them."""
    order = canonical({"id": "1", "status": "CANCELLED", "actor": "customer",
                       "fulfilment": "merchant"}, runtime.source)
    first, _ = plan_order(runtime, order, None, {}, NOW)
    second, _ = plan_order(runtime, order, None, {}, NOW)
    nested = [item for item in first if item.args.get("message") == "nested"][0]
    again = [item for item in second if item.args.get("message") == "nested"][0]
    expected = {"message": "nested", "lines": [1, {"a": [2, 3]}], "level": "attention"}
    assert nested.args == again.args == expected
    nested.args["lines"][1]["a"].append(4)
    nested.args["level"] = "changed"
    assert again.args == {"message": "nested", "lines": [1, {"a": [2, 3]}], "level": "attention"}
    reports = [item.args for item in second if item.name == "report"]
    assert {"level": "info", "message": "constant"} in reports
    assert [item.args for item in second if item.name == "watch"] == [{"hours": 48}]
