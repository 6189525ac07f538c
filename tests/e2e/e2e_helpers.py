"""What the end-to-end tests share: one run of a shipped flow on the sandbox, and the
requests and records they assert on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.engine import Summary
from connector.project import Config
from connector.runner import run_flows
from connector.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def apply(config: Config, sandbox: Sandbox, tmp_path: Path, flow: str,
          env: dict[str, str] | None = None) -> Summary:
    """Run `flow` once against `sandbox`, with a state file under `tmp_path`."""
    summaries, _ = run_flows(config, [flow], f"sqlite:///{tmp_path / 'state.db'}", sandbox.settings(),
                             env or {}, poll_scale=0.0, now=sandbox.clock.now)
    return summaries[0]


def mutations(sandbox: Sandbox, since: int = 0, ending: str = "") -> list[Any]:
    """The mutating requests the sandbox received (token requests left out)."""
    return [r for r in sandbox.requests[since:]
            if r.method in MUTATING and not r.path.endswith("/v3/token")
            and "/auth/o2/token" not in r.path and r.path.endswith(ending)]


def commerce_by_ext(sandbox: Sandbox, ext_id: str) -> list[dict[str, Any]]:
    """The Commerce orders linked to a marketplace order."""
    return [o for o in sandbox.commerce.orders.values() if o.get("ext_order_id") == ext_id]


def check_customer_creation(sandbox: Sandbox, ext_id: str, email: str, guest: bool) -> None:
    """A guest order creates no customer; `create` links the order to one new customer."""
    order = commerce_by_ext(sandbox, ext_id)[0]
    assert bool(order["customer_is_guest"]) is guest
    customers = [c for c in sandbox.commerce.customers.values() if c["email"] == email]
    assert len(customers) == (0 if guest else 1)
    if not guest:
        assert order["customer_id"] == customers[0]["id"]
