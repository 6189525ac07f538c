"""Every VTEX status declared in mappings/vtex.yaml meets a deliberate rule in both flows that
cancel VTEX orders: a cancelled marketplace order against a VTEX order in that status is
handled by exactly one rule whose choice (cancel, report, leave, watch) is the one recorded
here, and only the cancel choice sends CancelOrder (its precondition agrees with the rules).

A status declared in the mapping without a choice here fails, as does one whose rule changes
its choice: the table below is the reviewed decision (docs/shipped.md, "VTEX statuses")."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.normalise import canonical
from connector.plan import FlowRuntime, plan_order, prepare
from connector.project import Config, load_config, require
from connector.testing import TEST_NOW

REPO = Path(__file__).resolve().parent.parent

CANCEL = ("waiting-for-sellers-confirmation", "payment-pending", "waiting-for-order-authorization",
          "payment-approved", "waiting-ffmt-authorization", "waiting-for-authorization",
          "waiting-for-manual-authorization", "waiting-for-mkt-authorization", "window-to-cancel",
          "window-to-change-payment", "window-to-change-seller", "waiting-seller-handling",
          "waiting-for-fulfillment", "ready-for-handling", "handling", "ready-for-invoicing",
          "cancellation-requested")
REPORT = ("invoice", "invoiced", "invoice-after-cancellation-deny", "cancellation-request-denied",
          "cancellation-request-denied-ffm", "replaced", "order-create-error", "order-creation-error")
LEAVE = ("cancel", "canceled")
WATCH = ("order-created", "on-order-completed", "on-order-completed-ffm", "order-accepted",
         "approve-payment", "authorize-fulfillment", "start-handling", "request-cancel",
         "waiting-for-seller-decision")
CHOICES = {
    **{s: "cancel" for s in CANCEL}, **{s: "report" for s in REPORT},
    **{s: "leave" for s in LEAVE}, **{s: "watch" for s in WATCH},
}
#: The deliberate rules of both flows and the choice each makes.
RULES = {
    "cancel-in-vtex": "cancel",
    "vtex-invoiced-needs-return": "report",
    "vtex-cancellation-denied": "report",
    "vtex-order-replaced": "report",
    "vtex-order-creation-error": "report",
    "vtex-already-canceled": "leave",
    "vtex-transient-status": "watch",
    "vtex-cancellation-awaits-seller": "watch",
}
#: What runs for each choice (actions whose precondition holds).
ACTIONS = {"cancel": ["vtex.cancel_order"], "report": ["report"], "leave": [], "watch": ["watch"]}
#: Each flow's cancelled source order, as its mapping spells the status and the actors.
FLOWS = {
    "amazon-to-vtex": ("CANCELLED", ("seller", "amazon", "customer", None)),
    "walmart-to-vtex": ("Cancelled", ("seller", "walmart", "customer", None)),
}

CONFIG: Config = require(load_config(REPO))
DECLARED: tuple[str, ...] = CONFIG.systems["vtex"].domains.status


@pytest.fixture(scope="module")
def runtimes() -> dict[str, FlowRuntime]:
    return {name: prepare(CONFIG, name, {}) for name in FLOWS}


def test_every_declared_status_has_a_choice() -> None:
    assert len(DECLARED) == len(set(DECLARED))
    assert sorted(DECLARED) == sorted(CHOICES)


@pytest.mark.parametrize("flow", sorted(FLOWS))
@pytest.mark.parametrize("status", DECLARED)
def test_a_cancelled_order_meets_the_chosen_rule(runtimes: dict[str, FlowRuntime], flow: str,
                                                 status: str) -> None:
    runtime = runtimes[flow]
    cancelled, actors = FLOWS[flow]
    choice = CHOICES.get(status)
    assert choice is not None, f"VTEX status {status} is declared but has no choice here"
    for actor in actors:
        for fulfilment in ("merchant", "marketplace"):
            order = canonical({"id": "1", "status": cancelled, "actor": actor,
                               "fulfilment": fulfilment}, runtime.source)
            target = canonical({"id": "X-1-01", "status": status}, runtime.target)
            planned, decision = plan_order(runtime, order, target, {}, TEST_NOW)
            matched = [rule.id for rule in decision.matched]
            assert len(matched) == 1 and matched[0] in RULES, (actor, fulfilment, matched)
            assert RULES[matched[0]] == choice, (actor, fulfilment, matched)
            assert [p.name for p in planned if p.runnable] == ACTIONS[choice], (actor, fulfilment)
