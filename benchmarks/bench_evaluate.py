"""Evaluation throughput and validate time (run on demand, not a test).

    python benchmarks/bench_evaluate.py [--orders 20000] [--rules 24,1000] [--shipped]
                                        [--repeat 3] [--wall] [--baseline REV]

For a generated first-hit table (status, actor, fulfilment, target status, and a numeric
test on a fifth of the rules) of 24 and 1,000 rules, over orders drawn from the declared
domains, prints side by side in one run the orders/s of `compiled.evaluate`, `plan_order`, a
plain Python first-match loop, one dict look-up on the four fields, and GoRules ZEN
(`zen-engine`, `ZenEngine.evaluate` with its decision cached; skipped when not installed),
with ratios to ZEN, and checks they all pick the same rule. Each is run --repeat times,
interleaved, and timed in CPU seconds (--wall: wall clock), the fastest kept. Also the in-process `validate`
time of the 1,000-rule table (bench_validate.py times it as a whole process) and, with
--shipped, the shipped flows.

--baseline REV adds `compiled.evaluate` as git revision REV compiled it (that revision's
connector/evaluate/table.py, over this tree's conditions), timed interleaved with the rest, for
before/after figures in one run. Two more references say how much of the cost is only reading
the order: the dict look-up with its key read from the same contexts (`ctx["status"]`...
`ctx["target"]["status"]`), and the same look-up from the contexts freshly built per order as
`plan_order` evaluates them (a context built long before, like the 20,000 here, is out of the
CPU caches).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from plan_baseline import PlanBaseline, export  # noqa: E402
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
            "totals": {"amount": rng.randint(1, 600), "currency": "USD"},
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


#: The clock of the side-by-side figures: CPU seconds of this process (all its threads, so
#: ZEN's too), which other processes on a shared machine disturb far less than the wall
#: clock; `--wall` for the wall clock.
CLOCK = time.process_time
#: Contexts the "hot" rows cycle over: few enough to stay in the CPU caches, as the context
#: `plan_order` builds right before evaluating it is, where each of the 20,000 built up
#: front is read from memory (its counterpart's dict alone costs about 300 ns there).
HOT = 256
#: Orders ZenDecision.evaluate (a few thousand a second) is timed on.
ZEN_DECISION_ORDERS = 2_000
#: ZEN's figure on the 1,000-rule table in issue 9 (measured on another machine).
ZEN_ANCHOR = 176_000

AMAZON = ["PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED",
          "CANCELLED", "UNFULFILLABLE"]


def _rules_of(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    """The generated table's rules as plain data (the YAML the generator wrote)."""
    text = (directory / "rules" / "amazon-to-vtex.yaml").read_text()
    return yaml.safe_load(text)["rules"]  # type: ignore[no-any-return]


def _facts(order, target) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    totals = order.get("totals") or {}
    return (order.get("status"), order.get("actor"), order.get("fulfilment"),
            target.get("status") if target else None, totals.get("amount"))


def plain_loop(rules: list[dict]):  # type: ignore[no-untyped-def, type-arg]
    """A hand-written first-match loop over the same table: the rules as tuples of sets."""
    def allowed(test):  # type: ignore[no-untyped-def]
        if test is None:
            return None
        return frozenset(test["in"]) if isinstance(test, dict) else frozenset([test])

    table = []
    for rule in rules:
        when = rule["when"]
        amount = when.get("totals.amount", {}).get("gt")
        table.append((allowed(when.get("status")), allowed(when.get("actor")),
                      allowed(when.get("fulfilment")), allowed(when.get("target.status")),
                      amount, rule["id"]))

    def first(facts):  # type: ignore[no-untyped-def]
        status, actor, fulfilment, target, amount = facts
        for st, ac, fu, ts, gt, rule_id in table:
            if ((st is None or status in st) and (ac is None or actor in ac)
                    and (fu is None or fulfilment in fu) and (ts is None or target in ts)
                    and (gt is None or (amount is not None and amount > gt))):
                return rule_id
        return None
    return first


def zen_decision(rules: list[dict]):  # type: ignore[no-untyped-def, type-arg]
    """The same first-hit table as a GoRules JDM decision table, evaluated through the engine
    (its loader returning one precompiled ZenDecisionContent) and through a ZenDecision made
    once from it ({} without zen-engine).

    Measured with zen-engine 2.1.3: the engine path is ZEN's fast one (tens of thousands of
    orders/s at 1,000 rules); `ZenDecision.evaluate` stays about 20x slower whatever it is
    made from (text, precompiled content, `get_decision`), and neither `trace: False` nor a
    JSON-text context nor `evaluate_batch` (slower, on two CPUs) changes that ranking."""
    try:
        import zen
    except ImportError:
        return {}

    def unary(test):  # type: ignore[no-untyped-def]
        if test is None:
            return ""
        if isinstance(test, dict) and "in" in test:
            return ", ".join(json.dumps(v) for v in test["in"])
        if isinstance(test, dict) and "gt" in test:
            return f"> {test['gt']}"
        return json.dumps(test)

    fields = [("status", "status"), ("actor", "actor"), ("fulfilment", "fulfilment"),
              ("target.status", "target.status"), ("totals.amount", "totals.amount")]
    inputs = [{"id": f"in{i}", "name": name, "type": "expression", "field": path}
              for i, (name, path) in enumerate(fields)]
    table_rules = []
    for n, rule in enumerate(rules):
        row = {"_id": f"r{n}", "out": json.dumps(rule["id"])}
        row.update({f"in{i}": unary(rule["when"].get(name)) for i, (name, _) in enumerate(fields)})
        table_rules.append(row)
    content = {"contentType": "application/vnd.gorules.decision", "edges": [
        {"id": "e1", "type": "edge", "sourceId": "input", "targetId": "table"},
        {"id": "e2", "type": "edge", "sourceId": "table", "targetId": "output"}], "nodes": [
        {"id": "input", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
        {"id": "output", "type": "outputNode", "name": "Response", "position": {"x": 0, "y": 0}},
        {"id": "table", "type": "decisionTableNode", "name": "Rules", "position": {"x": 0, "y": 0},
         "content": {"hitPolicy": "first", "inputs": inputs, "rules": table_rules,
                     "outputs": [{"id": "out", "name": "rule", "type": "expression", "field": "rule"}]}}]}
    # ZenDecisionContent parses the JSON and compiles every cell's expression once; a loader
    # returning the JSON text instead makes the engine parse and compile the whole table on
    # each evaluate (about 260 orders/s at 1,000 rules), which is not ZEN's speed.
    compiled = zen.ZenDecisionContent(json.dumps(content))
    engine = zen.ZenEngine({"loader": lambda key: compiled})
    decision = engine.create_decision(compiled)

    def request(facts):  # type: ignore[no-untyped-def]
        status, actor, fulfilment, target, amount = facts
        return {"status": status, "actor": actor, "fulfilment": fulfilment,
                "target": {"status": target}, "totals": {"amount": amount}}

    return {
        "ZEN ZenEngine.evaluate": lambda facts: engine.evaluate("table.json", request(facts))["result"].get("rule"),
        "ZEN ZenDecision.evaluate": lambda facts: decision.evaluate(request(facts))["result"].get("rule"),
    }


def _zen_version() -> str:
    try:
        from importlib.metadata import version
        return f" (zen-engine {version('zen-engine')})"
    except Exception:  # noqa: BLE001 - not installed
        return ""


def _git_show(rev: str, path: str) -> str | None:
    found = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"],
                           capture_output=True, text=True)
    return found.stdout if found.returncode == 0 else None


def _module_from(name: str, source: str):  # type: ignore[no-untyped-def]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location(name, handle.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    Path(handle.name).unlink()
    return module


def baseline_table(rev: str):  # type: ignore[no-untyped-def]
    """Revision `rev`'s table module (connector/evaluate/table.py, or evaluate_table.py
    before the evaluate package) as a module of its own, with that revision's thresholds
    module when it has one (both import this tree's `connector.conditions` and
    `connector.model`)."""
    for table_path, thresholds_path, imported in (
            ("connector/evaluate/table.py", "connector/evaluate/thresholds.py",
             "from connector.evaluate.thresholds import"),
            ("connector/evaluate_table.py", "connector/evaluate_thresholds.py",
             "from connector.evaluate_thresholds import")):
        source = _git_show(rev, table_path)
        if source is not None:
            break
    else:
        raise SystemExit(f"{rev} has no evaluate table module to compare with")
    thresholds = _git_show(rev, thresholds_path)
    if thresholds is not None:
        alias = f"evaluate_thresholds_{rev}"
        _module_from(alias, thresholds)
        source = source.replace(imported, f"from {alias} import")
    return _module_from(f"evaluate_table_{rev}", source)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def side_by_side(config, directory: Path, flow_name: str, orders, repeat: int = 3,  # type: ignore[no-untyped-def]
                 baseline: str | None = None, baseline_tree: Path | None = None) -> None:
    """Orders/s of every way of matching the same table, in one run, with ratios to ZEN.

    A run's function returns None (timed here) or the seconds it took elsewhere (the
    baseline's planning, timed in its own process)."""
    runtime = prepare(config, flow_name, {})
    rules = _rules_of(directory)
    now = "2026-11-01T00:00:00Z"
    contexts = [rule_context(o, t, runtime.settings, runtime.public_settings, {}, now) for o, t in orders]
    facts = [_facts(o, t) for o, t in orders]
    loop = plain_loop(rules)
    zens = zen_decision(rules)
    lookup = {f: loop(f) for f in set(facts)}  # the answer for each case, precomputed
    keys = [f[:4] for f in facts]
    dict_table = {f[:4]: lookup[f] for f in facts}
    results: dict[str, float] = {}

    def plan_all() -> None:
        for order, target in orders:
            plan_order(runtime, order, target, {}, now)

    evaluate = runtime.compiled.evaluate  # bound once, as the baseline's is

    def evaluate_all() -> None:
        for context in contexts:
            evaluate(context)

    hot = (contexts[:HOT] * (len(contexts) // HOT + 1))[:len(contexts)]

    def evaluate_hot() -> None:
        for context in hot:
            evaluate(context)

    def lookup_hot() -> None:
        for ctx in hot:
            target = ctx["target"]
            dict_table[ctx["status"], ctx["actor"], ctx["fulfilment"],
                       target["status"] if target is not None else None]

    def loop_all() -> None:
        for fact in facts:
            loop(fact)

    def lookup_all() -> None:
        for key in keys:
            dict_table[key]

    def lookup_contexts() -> None:
        for ctx in contexts:
            target = ctx["target"]
            dict_table[ctx["status"], ctx["actor"], ctx["fulfilment"],
                       target["status"] if target is not None else None]

    settings, systems = runtime.rule_settings

    def lookup_fresh() -> None:
        for order, target in orders:
            ctx = dict(order)  # as plan_order builds it
            ctx["order"] = order
            ctx["source"] = order
            ctx["target"] = target
            ctx["settings"] = settings
            ctx["systems"] = systems
            ctx["outputs"] = {}
            ctx["now"] = now
            found = ctx["target"]
            dict_table[ctx["status"], ctx["actor"], ctx["fulfilment"],
                       found["status"] if found is not None else None]

    runs: dict[str, tuple[Callable[[], float | None], int]] = {
        "compiled.evaluate": (evaluate_all, len(orders)), "plan_order": (plan_all, len(orders)),
        "plain first-match loop": (loop_all, len(orders)), "one dict look-up": (lookup_all, len(orders)),
        "dict look-up, ctx read": (lookup_contexts, len(orders)),
        "dict look-up, ctx built": (lookup_fresh, len(orders)),
        "compiled.evaluate, hot": (evaluate_hot, len(orders)),
        "dict look-up, hot ctx": (lookup_hot, len(orders)),
    }
    if baseline:
        old = baseline_table(baseline)
        old_evaluate = old.evaluator(old.compile_table([rule.when for rule in runtime.flow.rules],
                                                       runtime.flow.hit_policy == "first",
                                                       runtime.compiled._decision))

        def old_all() -> None:
            for context in contexts:
                old_evaluate(context)

        def old_hot() -> None:
            for context in hot:
                old_evaluate(context)

        runs[f"compiled.evaluate@{baseline}"] = (old_all, len(orders))
        runs[f"compiled.evaluate@{baseline}, hot"] = (old_hot, len(orders))
    planner = None
    if baseline_tree is not None:
        planner = PlanBaseline(baseline_tree, directory / "rules" / "amazon-to-vtex.yaml",
                               orders, wall=CLOCK is time.perf_counter)
        runs[f"plan_order@{baseline}"] = (planner.run, len(orders))
    for name, zen_first in zens.items():
        # ZenDecision.evaluate is slow: timed on the first ZEN_DECISION_ORDERS orders
        some = facts if name == "ZEN ZenEngine.evaluate" else facts[:ZEN_DECISION_ORDERS]
        runs[name] = (lambda f=zen_first, s=some: [f(x) for x in s] and None, len(some))
    for _ in range(repeat):  # interleaved, the fastest of each kept (the machine is shared)
        for name, (run, count) in runs.items():
            begin = CLOCK()
            elsewhere = run()
            seconds = CLOCK() - begin if elsewhere is None else elsewhere
            results[name] = max(results.get(name, 0.0), rate(count, seconds))
    if planner is not None:
        planner.close()

    ours = [d.matched[0].id if d.matched else None for d in map(runtime.compiled.evaluate, contexts)]
    agree = ours == [loop(f) for f in facts]
    if baseline:
        agree = agree and ours == [d.matched[0].id if d.matched else None for d in map(old_evaluate, contexts)]
    for zen_first in zens.values():
        agree = agree and ours[:2000] == [zen_first(f) for f in facts[:2000]]
    zen = max((v for k, v in results.items() if k.startswith("ZEN")), default=None)
    print(f"{len(rules)} rules, {len(orders):,} orders (same first match everywhere: "
          f"{'yes' if agree else 'NO'}); fastest of {repeat} interleaved runs, "
          f"{'wall clock' if CLOCK is time.perf_counter else 'CPU time'}; ratios to the "
          f"faster ZEN call{_zen_version()}")
    for name, value in results.items():
        ratio = f"{value / zen:6.2f}x ZEN" if zen else "(zen-engine not installed)"
        print(f"  {name:<24} {value:>12,.0f} orders/s  {ratio}")
    if zen:
        print(f"  faster ZEN call against the issue's anchor ({ZEN_ANCHOR:,} orders/s, another "
              f"machine): {zen / ZEN_ANCHOR:.2f}x")
    dict_rate = results["one dict look-up"]
    for name in [n for n in results if n.startswith("compiled.evaluate")]:
        read = results["dict look-up, hot ctx" if name.endswith(", hot") else "dict look-up, ctx read"]
        print(f"  {name} is {dict_rate / results[name]:.1f}x slower than one dict look-up "
              f"(goal: within 10x), {read / results[name]:.1f}x "
              f"slower than the look-up reading its key from the same contexts")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rules", default="24,1000", help="sizes of the generated table")
    parser.add_argument("--shipped", action="store_true", help="also the shipped flows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the fastest kept")
    parser.add_argument("--wall", action="store_true", help="time by the wall clock, not CPU")
    parser.add_argument("--baseline", help="git revision whose compiled.evaluate to time alongside")
    args = parser.parse_args()
    if args.wall:
        global CLOCK
        CLOCK = time.perf_counter
    rng = random.Random(7)
    tree = export(args.baseline) if args.baseline else None
    if args.shipped:
        config = require(load_config(ROOT))
        for flow_name in sorted(config.flows):
            orders = orders_for(config, flow_name, args.orders, rng)
            evaluate, planned = measure(config, flow_name, orders)
            print(f"{flow_name}: {evaluate:,.0f} orders/s evaluated, {planned:,.0f} orders/s "
                  f"evaluated and planned ({len(config.flows[flow_name].rules)} rules)")
    for count in (int(n) for n in args.rules.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            generated_flow(directory, count, random.Random(7))
            if count == 1000:
                start = time.perf_counter()
                findings, _ = findings_for(directory, [])
                print(f"validate (in process), {count} rules: {time.perf_counter() - start:.2f} s "
                      f"({len(findings)} findings)")
            big = require(load_config(directory))
            side_by_side(big, directory, "amazon-to-vtex", orders_for(big, "amazon-to-vtex", args.orders, rng),
                         args.repeat, args.baseline, tree)
    if tree is not None:
        shutil.rmtree(tree)


if __name__ == "__main__":
    main()
