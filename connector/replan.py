"""Plans made from reads that may be stale: read the order again and plan it afresh.

A plan is made from the order and its counterpart as they were read. When an action is
refused (a 4xx, a `fail_if`) or its outcome is unknown (a 5xx, a timeout), what the remote
side holds now decides what it meant: a fresh plan that no longer has the action's key says
the refusal answered a state the plan had not seen (stale, not a failure), or the unknown
write took effect (or is no longer wanted); one that still has it says the effect is not
there. The key stands for the action on the order as it is, so "still has the key" is
"still called for"; the engine sends again only then, under the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError, HTTPError, LeaseLost
from connector.fetch import get_order
from connector.lookup import find_counterpart
from connector.normalise import normalise
from connector.plan import FlowRuntime, plan_order
from connector.state.store import StateStore
from connector.transport.client import SystemClient


def earlier_outputs(store: StateStore | None, flow: str, order_id: str) -> dict[str, Any]:
    """Earlier actions' outputs for the order, by bare action name (`reserve_stock`)."""
    if store is None:
        return {}
    return {name.split(".", 1)[-1]: values for name, values in store.outputs(flow, order_id).items()}


@dataclass(frozen=True)
class Replanner:
    """Fresh reads and plans for one flow run (its clients, store and time)."""

    runtime: FlowRuntime
    source: SystemClient
    target: SystemClient
    store: StateStore | None
    now_iso: str

    def replan(self, system: str, key: str,
               order: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        """Read the order an action with `key` acted on again (the source too when the
        action acted on it, and the counterpart) and plan afresh: (the source order, whether
        the fresh plan still has `key`). None when a read fails."""
        flow = self.runtime.flow
        try:
            fresh = order
            if system == flow.source != flow.target:
                raw = get_order(self.source, str(order["id"]))
                if raw is not None:
                    fresh = normalise(self.source.system, raw)
            target = find_counterpart(self.target, flow.source, fresh)
            outputs = earlier_outputs(self.store, flow.name, str(order["id"]))
            planned, _ = plan_order(self.runtime, fresh, target, outputs, self.now_iso)
        except LeaseLost:
            raise  # the run stops: the process that took over settles it
        except (HTTPError, ConnectorError):
            return None
        return fresh, any(p.key == key for p in planned)

    def stale(self, system: str, key: str, order: dict[str, Any]) -> dict[str, Any] | None:
        """After the action with `key` was refused: when the fresh plan no longer has its
        key, the refusal answered a state the plan had not seen (stale); the source order to
        evaluate again. None when the fresh plan still calls for it (a real failure) or a
        read fails."""
        replanned = self.replan(system, key, order)
        return None if replanned is None or replanned[1] else replanned[0]
