"""Rule analysis: shadowed rules, gaps, conflicts, preconditions and unknown domain values.

Systems and flows are built directly as model objects so each case states exactly the rules
it is about; the fixture test at the end runs the real loader over the invalid fixtures.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import pytest

from connector import build, conditions
from connector.analysis.flow import analyse_flow
from connector.diagnostics import Diagnostic, Severity
from connector.load import load_file
from connector.model import (
    Action,
    ActionCall,
    Auth,
    Condition,
    Domains,
    Flow,
    Normalise,
    Param,
    Rule,
    Setting,
    System,
    Where,
)

FILE = "rules/amazon-to-vtex.yaml"
AMAZON_STATUSES = (
    "PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED",
    "UNFULFILLABLE",
)
VTEX_STATUSES = (
    "payment-pending", "payment-approved", "window-to-cancel", "ready-for-handling", "handling",
    "cancellation-requested", "invoiced", "canceled",
)
FIXTURES = Path(__file__).parents[1] / "fixtures" / "invalid" / "rules"


# --- factories --------------------------------------------------------------------------


def cond(data: Any, line: int = 1) -> Condition:
    """A condition whose every node sits on `line`, column 7 (where `when:` values start)."""
    return conditions.parse(data, FILE, (), lambda path, key: (line, 7))


def action(system: str, name: str, precondition: Any = None, **params: Any) -> Action:
    return Action(
        system=system, name=name, description="",
        params={k: Param(name=k, default=v) for k, v in params.items()},
        precondition=cond(precondition) if precondition is not None else None,
        steps=(), where=Where(f"mappings/{system}.yaml"),
    )


def system(name: str, statuses: tuple[str, ...], actors: tuple[str, ...] = (),
           fulfilment: tuple[str, ...] = (), actions: tuple[Action, ...] = ()) -> System:
    return System(
        name=name, title=name, settings={}, base_url="", auth=Auth(kind="none"),
        rate_limits={}, domains=Domains(statuses, actors, fulfilment),
        normalise=Normalise({}, {}, {}, "", {}), listing=None, get_order=None, lookups={},
        actions={a.name: a for a in actions}, where=Where(f"mappings/{name}.yaml"),
    )


AMAZON = system(
    "amazon", AMAZON_STATUSES, ("seller", "amazon", "customer"), ("merchant", "marketplace"),
    (action("amazon", "cancel_order", {"order.status": "UNSHIPPED"}),
     action("amazon", "confirm_shipment")),
)
VTEX = system(
    "vtex", VTEX_STATUSES, (), ("merchant",),
    (action("vtex", "cancel_order", {"order.status": {"not_in": ["canceled", "invoiced"]}},
            reason="Cancelled by the connector"),
     action("vtex", "create_order", {"order": {"exists": False}}),
     action("vtex", "start_handling", {"order.status": "ready-for-handling"}),
     action("vtex", "release_reservation")),
)
SYSTEMS = {"amazon": AMAZON, "vtex": VTEX}


def rule(rule_id: str, when: Any, then: Any = (), line: int = 0) -> tuple[str, Any, Any, int]:
    return (rule_id, when, then, line)


def flow(*rules: tuple[str, Any, Any, int], hit_policy: str = "first",
         settings: dict[str, Setting] | None = None) -> Flow:
    """Rule k starts on line 10*k+2 (its `when` on the next line, its actions after)."""
    built = []
    for k, (rule_id, when, then, line) in enumerate(rules):
        start = line or 10 * k + 2
        calls = []
        for i, item in enumerate(then):
            name, args = (item, {}) if isinstance(item, str) else next(iter(item.items()))
            calls.append(ActionCall(name, dict(args), Where(FILE, start + 2 + i, 9)))
        built.append(Rule(rule_id, "", cond(when, start + 1), tuple(calls), Where(FILE, start, 5)))
    return Flow(
        name="amazon-to-vtex", source="amazon", target="vtex", hit_policy=hit_policy,
        description="", settings=settings or {}, rules=tuple(built), tests=(), where=Where(FILE, 1, 1),
    )


CATCH_ALL = rule("rest", {"status": {"exists": True}})


def codes(findings: list[Diagnostic], code: str) -> list[Diagnostic]:
    return [f for f in findings if f.code == code]


# --- rule-unreachable -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # one broader rule above
        ([rule("all-cancelled", {"status": "CANCELLED"}),
          rule("seller", {"status": "CANCELLED", "actor": "seller"})],
         {"seller": ["all-cancelled"]}),
        # two rules that together cover it
        ([rule("with-target", {"status": "CANCELLED", "target": {"exists": True}}),
          rule("without", {"status": "CANCELLED", "target": {"exists": False}}),
          rule("late", {"status": "CANCELLED", "actor": "amazon"})],
         {"late": ["with-target", "without"]}),
        # an opaque test in the later rule does not save it
        ([rule("shipped", {"status": {"in": ["SHIPPED", "PARTIALLY_SHIPPED"]}}),
          rule("big", {"status": "SHIPPED", "totals.amount": {"gt": 100}})],
         {"big": ["shipped"]}),
        # enum settings are a dimension
        ([rule("leave", {"settings.buyer_cancellation": "leave"}),
          rule("accept", {"settings.buyer_cancellation": "accept"}),
          rule("never", {"status": "PENDING"})],
         {"never": ["leave", "accept"]}),
        # boolean flags are a dimension; null still reaches a later rule
        ([rule("prime", {"attributes.prime": True}),
          rule("not-prime", {"attributes.prime": False}),
          rule("others", {"status": "PENDING"})],
         {}),
        # an earlier rule with an opaque test never shadows
        ([rule("expr", {"status": "CANCELLED", "expr": "order.items | length > 1"}),
          rule("cancelled", {"status": "CANCELLED"})],
         {}),
        ([rule("attr", {"status": "CANCELLED", "attributes.channel": "web"}),
          rule("cancelled", {"status": "CANCELLED"})],
         {}),
        # disjoint rules
        ([rule("a", {"status": "CANCELLED", "actor": "seller"}),
          rule("b", {"status": "CANCELLED", "actor": {"ne": "seller"}})],
         {}),
    ],
)
def test_shadowed_rules(rules: list[Any], expected: dict[str, list[str]]) -> None:
    settings = {"buyer_cancellation": Setting("buyer_cancellation", "leave", enum=("leave", "accept"))}
    findings = codes(analyse_flow(flow(*rules, settings=settings), SYSTEMS), "rule-unreachable")
    found = {f.message.split("'")[1]: f for f in findings}
    assert sorted(found) == sorted(expected)
    for rule_id, shadowers in expected.items():
        index = [r[0] for r in rules].index(rule_id)
        finding = found[rule_id]
        assert (finding.file, finding.line, finding.column) == (FILE, 10 * index + 2, 5)
        assert finding.severity is Severity.WARNING
        quoted = ", ".join(f"'{s}'" for s in shadowers)
        assert f"already match{'es' if len(shadowers) == 1 else ''} every order" in finding.message
        assert f"rule{'s' if len(shadowers) > 1 else ''} {quoted} already" in finding.message


def test_contradictory_rule_is_unreachable_under_any_policy() -> None:
    for policy in ("first", "all"):
        f = flow(rule("odd", {"target": {"exists": False}, "target.status": "handling"}),
                 CATCH_ALL, hit_policy=policy)
        (finding,) = codes(analyse_flow(f, SYSTEMS), "rule-unreachable")
        assert "its condition matches no order" in finding.message


def test_no_shadowing_under_all() -> None:
    f = flow(rule("a", {"status": "CANCELLED"}), rule("b", {"status": "CANCELLED", "actor": "seller"}),
             hit_policy="all")
    assert not codes(analyse_flow(f, SYSTEMS), "rule-unreachable")


# --- unknown-domain-value ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"status": "CANCELED"}, "'CANCELED' is not a status of amazon (did you mean 'CANCELLED'?)"),
        ({"status": {"in": ["SHIPPED", "UNSHIPED"]}},
         "'UNSHIPED' is not a status of amazon (did you mean 'UNSHIPPED'?)"),
        ({"actor": {"ne": "sellr"}}, "'sellr' is not an actor of amazon (did you mean 'seller'?)"),
        ({"fulfilment": "AFN"}, "'AFN' is not a fulfilment channel of amazon"),
        ({"target.status": {"not_in": ["cancelled"]}},
         "'cancelled' is not a status of vtex (did you mean 'canceled'?)"),
        ({"settings.buyer_cancellation": "accepted"},
         "'accepted' is not a value of setting 'buyer_cancellation' (did you mean 'accept'?)"),
    ],
)
def test_unknown_domain_value(when: dict[str, Any], message: str) -> None:
    settings = {"buyer_cancellation": Setting("buyer_cancellation", "leave", enum=("leave", "accept"))}
    findings = analyse_flow(flow(rule("typo", when), CATCH_ALL, settings=settings), SYSTEMS)
    (finding,) = codes(findings, "unknown-domain-value")
    assert finding.message == message
    assert finding.severity is Severity.ERROR
    assert (finding.line, finding.column) == (3, 7)
    # no second finding for the same typo
    assert not [f for f in codes(findings, "rule-unreachable") if f.message.startswith("rule 'typo'")]


@pytest.mark.parametrize(
    "when",
    [{"actor": None}, {"target.status": None}, {"status": {"in": list(AMAZON_STATUSES)}},
     {"attributes.channel": "whatever"}],
)
def test_known_domain_values_pass(when: dict[str, Any]) -> None:
    assert not codes(analyse_flow(flow(rule("ok", when), CATCH_ALL), SYSTEMS), "unknown-domain-value")


# --- rule-gap ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        # everything but one status is handled
        ([rule("not-pending", {"status": {"ne": "PENDING"}})],
         "no rule handles: status=PENDING"),
        # one actor missing, and "no actor" too
        ([rule("other", {"status": {"ne": "CANCELLED"}}),
          rule("c", {"status": "CANCELLED", "actor": {"in": ["seller", "amazon"]}})],
         "no rule handles: status=CANCELLED actor=customer; status=CANCELLED actor=none"),
        # one exact triple, only when the target is absent
        ([rule("other", {"any": [{"status": {"ne": "PENDING"}}, {"actor": {"exists": True}},
                                 {"fulfilment": "merchant"}]}),
          rule("present", {"target": {"exists": True}})],
         "no rule handles: status=PENDING actor=none fulfilment=marketplace (target absent)"),
        # a target status left out
        ([rule("other", {"status": {"ne": "CANCELLED"}}),
          rule("c", {"status": "CANCELLED", "target.status": {"ne": "invoiced"}})],
         "no rule handles: status=CANCELLED (target.status=invoiced)"),
        # no rules at all
        ([], "no rule handles: any order"),
    ],
)
def test_gaps(rules: list[Any], message: str) -> None:
    (finding,) = codes(analyse_flow(flow(*rules), SYSTEMS), "rule-gap")
    assert finding.message == message
    assert finding.severity is Severity.WARNING
    assert (finding.line, finding.column) == (1, 1)  # the file top: line 2 - 1, or no rules


@pytest.mark.parametrize(
    "rules",
    [
        [CATCH_ALL],
        [rule("ignore", {"status": {"in": list(AMAZON_STATUSES)}})],
        [rule("cancelled", {"status": "CANCELLED"}, ["vtex.cancel_order"]),
         rule("rest", {"status": {"ne": "CANCELLED"}})],
        # an opaque test counts as covering: gaps are only reported when certain
        [rule("maybe", {"expr": "order.items | length > 0"})],
        # flags tested true and false cover the flag (null is not reported as a gap)
        [rule("prime", {"attributes.prime": True}), rule("other", {"attributes.prime": False})],
        # either target state, then: [] counts as handling
        [rule("present", {"target": {"exists": True}}, ["vtex.cancel_order"]),
         rule("absent", {"target": None})],
    ],
)
def test_no_gap(rules: list[Any]) -> None:
    assert not codes(analyse_flow(flow(*rules), SYSTEMS), "rule-gap")


def test_gap_list_is_capped() -> None:
    # each status loses 4 pieces: seller/marketplace, amazon, customer, none -> 28 entries
    rules = [rule("one", {"actor": "seller", "fulfilment": "merchant"})]
    (finding,) = codes(analyse_flow(flow(*rules), SYSTEMS), "rule-gap")
    assert finding.message.startswith(
        "no rule handles: status=PENDING_AVAILABILITY actor=seller fulfilment=marketplace; "
        "status=PENDING_AVAILABILITY actor=amazon; status=PENDING_AVAILABILITY actor=customer; "
        "status=PENDING_AVAILABILITY actor=none; status=PENDING actor=seller"
    )
    assert finding.message.endswith("; and 8 more")
    assert finding.message.count(";") == 20


def test_gap_sits_above_the_first_rule() -> None:
    (finding,) = codes(analyse_flow(flow(rule("p", {"status": "PENDING"}, line=9)), SYSTEMS), "rule-gap")
    assert (finding.line, finding.column) == (8, 1)


# --- rule-conflict ----------------------------------------------------------------------


CONFLICTS = [
    # same action, different arguments
    ([rule("seller", {"status": "CANCELLED", "actor": "seller"}, [{"vtex.cancel_order": {"reason": "a"}}]),
      rule("all", {"status": "CANCELLED"}, [{"vtex.cancel_order": {"reason": "b"}}])],
     ("rules 'seller' and 'all' can both match one order (status=CANCELLED, actor=seller) and their "
     "actions conflict: 'seller' calls vtex.cancel_order with {\"reason\": \"a\"}, 'all' with "
     "{\"reason\": \"b\"}")),
    # cancel against create on one system
    ([rule("make", {"status": "UNSHIPPED"}, ["vtex.create_order"]),
      rule("drop", {"status": {"in": ["UNSHIPPED", "CANCELLED"]}, "target": None}, ["vtex.cancel_order"])],
     ("rules 'make' and 'drop' can both match one order (status=UNSHIPPED, target absent) and their "
     "actions conflict: 'make' calls vtex.create_order but 'drop' calls vtex.cancel_order")),
    # an opaque test on one side only: the overlap is still certain
    ([rule("a", {"status": "CANCELLED", "attributes.x": 1}, [{"vtex.cancel_order": {"reason": "a"}}]),
      rule("b", {"status": "CANCELLED"}, ["vtex.cancel_order"])],
     "rules 'a' and 'b' can both match one order (status=CANCELLED)"),
]
NO_CONFLICTS = [
    # disjoint conditions
    [rule("a", {"status": "CANCELLED", "actor": "seller"}, [{"vtex.cancel_order": {"reason": "a"}}]),
     rule("b", {"status": "CANCELLED", "actor": "amazon"}, [{"vtex.cancel_order": {"reason": "b"}}])],
    # same arguments once defaults are applied
    [rule("a", {"status": "CANCELLED"}, ["vtex.cancel_order"]),
     rule("b", {"status": "CANCELLED"}, [{"vtex.cancel_order": {"reason": "Cancelled by the connector"}}])],
    # different systems
    [rule("a", {"status": "CANCELLED"}, ["amazon.cancel_order"]),
     rule("b", {"status": "CANCELLED"}, ["vtex.create_order"])],
    # both overlaps depend on opaque tests
    [rule("a", {"status": "CANCELLED", "attributes.x": 1}, ["vtex.create_order"]),
     rule("b", {"status": "CANCELLED", "attributes.x": 2}, ["vtex.cancel_order"])],
    # built-ins never conflict
    [rule("a", {"status": "CANCELLED"}, [{"report": {"message": "a"}}]),
     rule("b", {"status": "CANCELLED"}, [{"report": {"message": "b"}}])],
]


@pytest.mark.parametrize(("rules", "message"), CONFLICTS)
def test_conflict_under_all(rules: list[Any], message: str) -> None:
    (finding,) = codes(analyse_flow(flow(*rules, CATCH_ALL, hit_policy="all"), SYSTEMS), "rule-conflict")
    assert finding.message.startswith(message)
    assert (finding.line, finding.column) == (12, 5)  # the later rule of the pair


@pytest.mark.parametrize(("rules", "message"), CONFLICTS)
def test_no_conflict_under_first(rules: list[Any], message: str) -> None:
    assert not codes(analyse_flow(flow(*rules, CATCH_ALL), SYSTEMS), "rule-conflict")


@pytest.mark.parametrize("rules", NO_CONFLICTS)
def test_no_conflict(rules: list[Any]) -> None:
    assert not codes(analyse_flow(flow(*rules, CATCH_ALL, hit_policy="all"), SYSTEMS), "rule-conflict")


def test_conflict_names_the_others() -> None:
    rules = [rule(f"r{k}", {"status": "CANCELLED"}, [{"vtex.cancel_order": {"reason": str(k)}}]) for k in range(6)]
    findings = codes(analyse_flow(flow(*rules, hit_policy="all"), SYSTEMS), "rule-conflict")
    assert len(findings) == 5
    assert findings[-1].message.endswith("'r5' also conflicts with 'r1', 'r2', 'r3' and 1 more")


# --- precondition-never-holds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "then", "message"),
    [
        ({"status": "CANCELLED", "target.status": "canceled"}, ["vtex.cancel_order"],
         ("action 'vtex.cancel_order' never runs where rule 'r' fires: its precondition requires "
         "order.status not in ['canceled', 'invoiced'] but the rule matches only target.status=canceled")),
        ({"target.status": {"in": ["invoiced", "canceled"]}}, ["vtex.cancel_order"],
         "but the rule matches only target.status in [invoiced, canceled]"),
        ({"target": {"exists": True}}, ["create_order"],
         ("action 'vtex.create_order' never runs where rule 'r' fires: its precondition requires "
         "order does not exist but the rule matches only target present")),
        ({"target": None}, ["start_handling"], "but the rule matches only target absent"),
        # a source action: `order` is the source order
        ({"status": "SHIPPED"}, ["amazon.cancel_order"],
         ("action 'amazon.cancel_order' never runs where rule 'r' fires: its precondition requires "
         "order.status == 'UNSHIPPED' but the rule matches only status=SHIPPED")),
    ],
)
def test_precondition_never_holds(when: dict[str, Any], then: list[Any], message: str) -> None:
    f = flow(rule("r", when, ["report"] + then), CATCH_ALL)
    (finding,) = codes(analyse_flow(f, SYSTEMS), "precondition-never-holds")
    assert message in finding.message
    assert (finding.line, finding.column) == (5, 9)  # the action call, second in `then`


@pytest.mark.parametrize(
    ("when", "then"),
    [
        ({"status": "CANCELLED", "target.status": {"in": ["handling", "canceled"]}}, ["vtex.cancel_order"]),
        ({"target": None}, ["create_order"]),
        ({"status": "UNSHIPPED"}, ["amazon.cancel_order"]),
        # an opaque test in the precondition's place: may hold
        ({"target.status": "canceled", "expr": "true"}, ["release_reservation"]),
        # after a mutating action on vtex, the order has changed: not checked
        ({"target": None}, ["create_order", "start_handling"]),
        # unknown and ambiguous names are someone else's finding
        ({"target.status": "canceled"}, ["cancel_order", "nope", "vtex.nope"]),
    ],
)
def test_precondition_compatible(when: dict[str, Any], then: list[Any]) -> None:
    f = flow(rule("r", when, then), CATCH_ALL)
    assert not codes(analyse_flow(f, SYSTEMS), "precondition-never-holds")


# --- robustness -------------------------------------------------------------------------


def test_missing_systems_are_skipped() -> None:
    f = flow(rule("a", {"status": "CANCELED"}, ["vtex.cancel_order"]))
    assert analyse_flow(f, {}) == []
    assert not codes(analyse_flow(f, {"vtex": VTEX}), "unknown-domain-value")


def test_not_and_any_are_exact_over_domains() -> None:
    f = flow(rule("not-cancelled", {"not": {"status": "CANCELLED"}}),
             rule("seller-or-amazon", {"any": [{"actor": "seller"}, {"actor": "amazon"}]}),
             rule("late", {"status": "CANCELLED", "actor": {"in": ["amazon", "seller"]}}),
             rule("rest", {"status": "CANCELLED"}))
    findings = analyse_flow(f, SYSTEMS)
    assert [f.message for f in codes(findings, "rule-unreachable")] == [
        "rule 'late' can never fire: rule 'seller-or-amazon' already matches every order it matches"
    ]
    assert not codes(findings, "rule-gap")


def test_system_and_boolean_settings_are_dimensions() -> None:
    vtex = system("vtex", VTEX_STATUSES, (), ("merchant",), (
        action("vtex", "hold", {"settings.mode": "strict"}),
    ))
    vtex = dataclasses.replace(vtex, settings={"mode": Setting("mode", "loose", enum=("loose", "strict"))})
    settings = {"dry": Setting("dry", False, kind="boolean")}
    f = flow(rule("dry", {"settings.dry": True}),
             rule("loose", {"systems.vtex.mode": "loose", "settings.dry": False}, ["vtex.hold"]),
             rule("strict", {"systems.vtex.mode": "strict", "settings.dry": False}),
             rule("never", {"status": "PENDING"}),
             settings=settings)
    findings = analyse_flow(f, {"amazon": AMAZON, "vtex": vtex})
    assert [(d.code, d.line) for d in findings] == [
        ("precondition-never-holds", 14), ("rule-unreachable", 32),
    ]
    assert "rules 'dry', 'loose', 'strict' already match" in findings[1].message
    assert "systems.vtex.mode=loose" in findings[0].message


def test_overlap_that_is_not_a_box_is_worded_as_alternatives() -> None:
    f = flow(rule("a", {"any": [{"status": "CANCELLED"}, {"actor": "seller"}]},
                  [{"vtex.cancel_order": {"reason": "x"}}]),
             rule("b", {"target": {"exists": True}}, ["vtex.cancel_order"]),
             CATCH_ALL, hit_policy="all")
    (finding,) = codes(analyse_flow(f, SYSTEMS), "rule-conflict")
    assert (
        "(status not in [CANCELLED], actor=seller, target present; or status=CANCELLED, target present)"
        in finding.message
    )


def test_thousand_rules_in_seconds() -> None:
    import random

    rng = random.Random(7)
    rules = []
    for k in range(1000):
        when: dict[str, Any] = {"status": {"in": rng.sample(AMAZON_STATUSES, rng.randint(1, 3))}}
        if rng.random() < 0.6:
            when["actor"] = rng.choice(["seller", "amazon", "customer", None])
        if rng.random() < 0.5:
            when["target.status"] = {"in": rng.sample(VTEX_STATUSES, rng.randint(1, 4))}
        if rng.random() < 0.2:
            when["attributes.prime"] = rng.random() < 0.5
        rules.append(rule(f"r{k}", when, [{"vtex.cancel_order": {"reason": str(k % 3)}}]))
    for policy in ("first", "all"):
        start = time.perf_counter()
        findings = analyse_flow(flow(*rules, hit_policy=policy), SYSTEMS)
        assert time.perf_counter() - start < 3.0
        assert findings


# --- fixtures ---------------------------------------------------------------------------


ANALYSIS_CODES = (
    "rule-unreachable", "rule-gap", "rule-conflict", "precondition-never-holds", "unknown-domain-value",
)


def valid_systems() -> dict[str, System]:
    """The mappings of the valid fixture project (the ones `connector validate` tests use)."""
    systems = {}
    for path in sorted((FIXTURES.parent.parent / "valid" / "mappings").glob("*.yaml")):
        doc, problems = load_file(path)
        assert doc is not None and not problems
        built = build.system(doc)
        systems[built.name] = built
    return systems


@pytest.mark.parametrize("code_name", ANALYSIS_CODES)
def test_invalid_fixture(code_name: str) -> None:
    """Each fixture raises its code at the stated position, and nothing else from analysis."""
    path = FIXTURES / f"{code_name}.yaml"
    header = path.read_text().splitlines()[0]
    match = re.fullmatch(r"# expect: ([a-z-]+) (\d+):(\d+)", header)
    assert match, header
    code, line, column = match.group(1), int(match.group(2)), int(match.group(3))
    doc, problems = load_file(path)
    assert doc is not None and not problems
    findings = analyse_flow(build.flow(doc, path.stem), valid_systems())
    assert [(f.code, f.line, f.column) for f in findings] == [(code, line, column)]


def test_valid_flow_is_clean() -> None:
    path = FIXTURES.parent.parent / "valid" / "rules" / "amazon-to-vtex.yaml"
    doc, _ = load_file(path)
    assert doc is not None
    assert analyse_flow(build.flow(doc, "amazon-to-vtex"), valid_systems()) == []
