"""Requests per order of each shipped flow on the sandbox, Walmart's beside Amazon's.

    python benchmarks/bench_requests.py [--orders N]

Each flow runs once on a fresh sandbox seeded with N generated orders per marketplace
(`Sandbox(orders=N, walmart_orders=N)`), with a state file of its own. Printed per flow: the
requests the sandbox received, the orders evaluated, the mutating requests (token requests
left out), requests per order, and the requests beyond one look-up per order plus the
mutating ones (listing pages, tokens, re-reads after transitional actions, reads an action
needs). The Walmart flows are YAML only; the Amazon flow of the same shape is the anchor.
`mx:` rows run the Walmart flow with market mx (the mapping's México variant) on N generated
México orders besides the others (`walmart_mx_orders=N`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from connector.project import load_config, require
from connector.runner import run_flows
from connector.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
PAIRS = [("amazon-to-vtex", "walmart-to-vtex", "mx:walmart-to-vtex"),
         ("amazon-to-adobe-commerce", "walmart-to-adobe-commerce", "mx:walmart-to-adobe-commerce"),
         ("adobe-commerce-to-amazon", "adobe-commerce-to-walmart", "mx:adobe-commerce-to-walmart")]
MX = {"CONNECTOR_WALMART_MARKET": "mx"}
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def measure(flow: str, orders: int) -> tuple[int, int, int]:
    """(requests, orders evaluated, mutating requests) of one run of `flow`."""
    config = require(load_config(REPO))
    market, _, flow = flow.rpartition(":")
    with Sandbox(orders=orders, walmart_orders=orders, walmart_mx=False,
                 walmart_mx_orders=orders if market else 0) as box, \
            tempfile.TemporaryDirectory() as tmp:
        summaries, _ = run_flows(config, [flow], f"sqlite:///{tmp}/state.db", box.settings(),
                                 MX if market else {}, poll_scale=0.0, now=box.clock.now)
        requests = box.requests
        mutating = sum(1 for r in requests if r.method in MUTATING and "token" not in r.path)
        return len(requests), summaries[0].orders, mutating


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    print(f"{'flow':28} {'requests':>8} {'orders':>6} {'mutating':>8} {'per order':>9} {'beyond':>6}")
    for pair in PAIRS:
        for flow in pair:
            total, evaluated, mutating = measure(flow, args.orders)
            beyond = total - evaluated - mutating
            print(f"{flow:28} {total:8} {evaluated:6} {mutating:8} {total / max(evaluated, 1):9.2f} {beyond:6}")


if __name__ == "__main__":
    main()
