"""Evaluation throughput and validate time (run on demand, not a test).

    python benchmarks/bench_evaluate.py [--orders 100000] [--rules 1000]

Prints orders per second for each shipped flow (canonical orders drawn from the source's
declared domains), for a generated flow of N rules, and the time `validate` takes on it.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.commands.validate import findings_for  # noqa: E402
from connector.evaluate import rule_context  # noqa: E402
from connector.normalise import canonical  # noqa: E402
from connector.plan import plan_order, prepare  # noqa: E402
from connector.project import load_config, require  # noqa: E402


def orders_for(config, flow_name: str, count: int, rng: random.Random):  # type: ignore[no-untyped-def]
    flow = config.flows[flow_name]
    source = config.systems[flow.source].domains
    target = config.systems[flow.target].domains
    result = []
    for i in range(count):
        order = canonical({
            "id": f"ORDER-{i}", "status": rng.choice(source.status),
            "actor": rng.choice(source.actor or (None,)),
            "fulfilment": rng.choice(source.fulfilment or ("merchant",)),
            "updated_at": "2026-11-01T00:00:00Z", "items": [{"sku": "SKU-1", "quantity": 1, "id": "1"}],
            "buyer": {"email": "b@example.com", "name": "B"},
        }, config.systems[flow.source])
        status = rng.choice((None, *target.status))
        tgt = canonical({"id": f"T-{i}", "status": status}, config.systems[flow.target]) if status else None
        result.append((order, tgt))
    return result


def measure(config, flow_name: str, orders) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(orders/s evaluating the rules only, orders/s evaluating and planning the actions)."""
    runtime = prepare(config, flow_name, {})
    contexts = [rule_context(o, t, runtime.settings, runtime.public_settings, {}, "2026-11-01T00:00:00Z")
                for o, t in orders]
    start = time.perf_counter()
    for context in contexts:
        runtime.compiled.evaluate(context)
    evaluate = len(orders) / (time.perf_counter() - start)
    start = time.perf_counter()
    for order, target in orders:
        plan_order(runtime, order, target, {}, "2026-11-01T00:00:00Z")
    return evaluate, len(orders) / (time.perf_counter() - start)


def generated_flow(directory: Path, rules: int, rng: random.Random) -> None:
    amazon = ["PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED",
              "CANCELLED", "UNFULFILLABLE"]
    vtex = ["payment-pending", "payment-approved", "window-to-cancel", "ready-for-handling",
            "handling", "cancellation-requested", "invoiced", "canceled"]
    items = []
    for i in range(rules - 1):
        when: dict[str, object] = {"status": rng.choice(amazon)}
        if rng.random() < 0.7:
            when["actor"] = {"in": rng.sample(["seller", "amazon", "customer"], 2)}
        if rng.random() < 0.7:
            when["fulfilment"] = rng.choice(["merchant", "marketplace"])
        when["target.status"] = {"in": rng.sample(vtex, 3)}
        if rng.random() < 0.2:
            when["totals.amount"] = {"gt": rng.randint(1, 500)}
        items.append({"id": f"rule-{i}", "when": when,
                      "then": [{"cancel_order": {"reason": f"rule {i}"}}] if rng.random() < 0.5 else []})
    items.append({"id": "catch-all", "when": {"status": {"in": amazon}}, "then": []})
    (directory / "rules").mkdir()
    (directory / "rules" / "amazon-to-vtex.yaml").write_text(
        yaml.safe_dump({"source": "amazon", "target": "vtex", "hit_policy": "first", "rules": items},
                       sort_keys=False))
    (directory / "mappings").symlink_to(ROOT / "tests" / "fixtures" / "valid" / "mappings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=1_000)
    args = parser.parse_args()
    rng = random.Random(7)
    config = require(load_config(ROOT))
    for flow_name in sorted(config.flows):
        orders = orders_for(config, flow_name, min(args.orders, 20_000), rng)
        evaluate, planned = measure(config, flow_name, orders)
        print(f"{flow_name}: {evaluate:,.0f} orders/s evaluated, {planned:,.0f} orders/s evaluated and "
              f"planned ({len(config.flows[flow_name].rules)} rules, {len(orders)} orders)")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        generated_flow(directory, args.rules, rng)
        start = time.perf_counter()
        findings, _ = findings_for(directory, [])
        elapsed = time.perf_counter() - start
        print(f"validate, {args.rules} generated rules: {elapsed:.2f} s ({len(findings)} findings)")
        big = require(load_config(directory))
        orders = orders_for(big, "amazon-to-vtex", args.orders, rng)
        evaluate, planned = measure(big, "amazon-to-vtex", orders)
        print(f"generated flow: {evaluate:,.0f} orders/s evaluated, {planned:,.0f} orders/s evaluated "
              f"and planned ({args.rules} rules, {len(orders):,} orders)")


if __name__ == "__main__":
    main()
