"""What a connector run changed in the sandbox, comparable across identically seeded ones.

Fault and soak tests judge the connector by effects, never by requests: a request may be
answered 429, be lost, or act without an answer, and what matters is that each expected
change happened exactly once and no order was left behind. `effects` takes a snapshot per
order (ids the simulators allocate, such as Commerce entity ids, left out, so that two
sandboxes seeded alike compare equal after equal work); `judge` sorts the differences
between a snapshot and a fault-free reference into duplicates (more effects than expected),
losses (fewer) and other mismatches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.sandbox import Sandbox

__all__ = ["Verdict", "differences", "effects", "judge"]


def effects(sandbox: Sandbox) -> dict[str, Any]:
    """Per system, per order: the state and the number of each kind of change.

    amazon: (fulfillment status, packages, acknowledgement feed results); vtex: (status,
    cancellation requests); reservations: LockId → Status; commerce: increment_id → one
    (state, invoices, shipments, credit memos, sorted comments) per order with that id;
    customers: email → count.
    """
    with sandbox._lock:  # one consistent picture, even with a late request in flight
        amazon = {oid: (o["fulfillment"]["fulfillmentStatus"], len(o.get("packages") or []),
                        tuple(sandbox.amazon.acknowledgements.get(oid, [])))
                  for oid, o in sandbox.amazon.orders.items()}
        vtex = {oid: (o["status"], len(o.get("cancellationRequests") or []))
                for oid, o in sandbox.vtex.orders.items()}
        reservations = {lock: r["Status"] for lock, r in sandbox.vtex.reservations.items()}
        commerce = sandbox.commerce
        documents: Counter[tuple[int, str]] = Counter()
        for name, table in (("invoice", commerce.invoices), ("shipment", commerce.shipments),
                            ("creditmemo", commerce.creditmemos)):
            for document in table.values():
                documents[(document["order_id"], name)] += 1
        orders: dict[str, list[Any]] = {}
        for order in commerce.orders.values():
            entity = order["entity_id"]
            comments = [h["comment"] for h in order.get("status_histories") or []]
            orders.setdefault(str(order.get("increment_id")), []).append((
                order["state"], documents[(entity, "invoice")],
                documents[(entity, "shipment")], documents[(entity, "creditmemo")],
                sorted(comments)))
        customers = Counter(c["email"] for c in commerce.customers.values())
    return {"amazon": amazon, "vtex": vtex, "reservations": reservations,
            "commerce": orders, "customers": dict(customers)}


def differences(got: Mapping[str, Any], want: Mapping[str, Any]) -> list[str]:
    """Readable differences between two snapshots (empty when equal)."""
    found = []
    for part in sorted(set(got) | set(want)):
        a, b = got.get(part, {}), want.get(part, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                found.append(f"{part}[{key}]: got {a.get(key)!r}, want {b.get(key)!r}")
    return found


@dataclass
class Verdict:
    """Differences from the reference, sorted by what they mean."""

    duplicates: list[str] = field(default_factory=list)  # an effect more often than expected
    losses: list[str] = field(default_factory=list)  # an expected effect missing
    mismatches: list[str] = field(default_factory=list)  # a different end state

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.losses or self.mismatches)


def _counts(part: str, value: Any) -> list[int]:
    """The effect counters of one snapshot entry (see `effects`)."""
    if value is None:
        return []
    if part == "amazon":
        return [value[1], len(value[2])]
    if part == "vtex":
        return [value[1]]
    if part == "commerce":
        return [len(value), *(sum(entry[i] for entry in value) for i in (1, 2, 3)),
                sum(len(entry[4]) for entry in value)]
    if part == "customers":
        return [value]
    return []


def judge(got: Mapping[str, Any], want: Mapping[str, Any]) -> Verdict:
    """Sort every difference between `got` and the reference `want`."""
    verdict = Verdict()
    for part in sorted(set(got) | set(want)):
        a, b = got.get(part, {}), want.get(part, {})
        for key in sorted(set(a) | set(b)):
            mine, theirs = a.get(key), b.get(key)
            if mine == theirs:
                continue
            line = f"{part}[{key}]: got {mine!r}, want {theirs!r}"
            more, fewer = _counts(part, mine), _counts(part, theirs)
            if theirs is None or (more and fewer and any(x > y for x, y in zip(more, fewer))):
                verdict.duplicates.append(line)
            elif mine is None or (more and fewer and any(x < y for x, y in zip(more, fewer))):
                verdict.losses.append(line)
            else:
                verdict.mismatches.append(line)
    return verdict
