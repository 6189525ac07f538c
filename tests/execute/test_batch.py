"""Which actions go through the batch machinery (connector.execute.batch), and its pieces
that need no HTTP: the effect step and the stored context (end to end: tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.execute.batch import _effect_index, _stored
from connector.project import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def systems():  # type: ignore[no-untyped-def]
    return load_config(REPO)[0].systems


@pytest.mark.parametrize(("action", "batched", "declared", "effect"), [
    ("amazon.cancel_order", True, True, "create_feed"),  # one feed for the run's orders
    ("amazon.confirm_shipment_feed", True, True, "create_feed"),  # the same, for shipments
    ("amazon.confirm_shipment", False, False, None),  # one call per order
    # a write whose poll of one attempt only checks its own answer (Magento's true/false):
    # sent at once, never waited on as if it were a read
    ("adobe-commerce.cancel_order", False, False, None),
    ("adobe-commerce.add_comment", False, False, None),
    ("vtex.cancel_order", False, False, None),
])
def test_which_actions_are_batched(systems, action: str, batched: bool, declared: bool,  # type: ignore[no-untyped-def]
                                   effect: str | None) -> None:
    system, name = action.split(".")
    found = systems[system].actions[name]
    assert (found.batch is not None) == batched
    if found.batch is not None:
        assert found.batch.declared == declared
        assert found.steps[_effect_index(found)].name == effect


def test_a_stored_context_leaves_the_settings_out() -> None:
    context = {"order": {"id": "1"}, "settings": {"client_secret": "s3cr3t"}, "steps": {"a": {}},
               "args": {"reason": "NoInventory"}}
    assert _stored(context) == {"order": {"id": "1"}, "args": {"reason": "NoInventory"}}
