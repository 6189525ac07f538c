"""Stage 4, normalise: a system's raw order record → the canonical order rules see.

Every field is a JMESPath expression from the mapping (compiled once per expression), with an
optional value map (Amazon `MERCHANT` → `seller`). The result always has every canonical field,
so rules and templates never meet a missing key.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jmespath
import jmespath.exceptions
from jmespath.lexer import Lexer
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter

from connector.errors import ConnectorError, UsageError
from connector.model import CANONICAL_FIELDS, CANONICAL_SUBFIELDS, ITEM_FIELDS, System


#: Bound on brackets, parentheses and braces inside each other in one expression: jmespath's
#: parser recurses a few frames per level (500 levels is a RecursionError); mappings use 3.
MAX_EXPRESSION_DEPTH = 64

_OPENING = frozenset({"lparen", "lbracket", "lbrace", "filter"})
_CLOSING = frozenset({"rparen", "rbracket", "rbrace"})


@functools.lru_cache(maxsize=4096)
def compile_path(expression: str) -> ParsedResult:
    """A compiled JMESPath expression (cached: mappings reuse a few dozen expressions).

    Nesting past `MAX_EXPRESSION_DEPTH`, and any other the parser's recursion cannot take
    (a long chain of projections), is a `ParseError` like any syntax error, at the column
    where the too deep part starts, never a RecursionError."""
    too_deep = _too_deep_at(expression)
    if too_deep is not None:
        raise _nesting_error(int(too_deep["start"]), str(too_deep["value"]), str(too_deep["type"]))
    try:
        return jmespath.compile(expression)
    except RecursionError:
        raise _nesting_error(0, expression[:1], "expression") from None


def _too_deep_at(expression: str) -> dict[str, Any] | None:
    """The token of the first bracket past `MAX_EXPRESSION_DEPTH`, or None (the lexer is a
    loop, not a recursion; a lexing error is left to the parser to report)."""
    depth = 0
    try:
        for token in Lexer().tokenize(expression):
            if token["type"] in _OPENING:
                depth += 1
                if depth > MAX_EXPRESSION_DEPTH:
                    return dict(token)
            elif token["type"] in _CLOSING:
                depth -= 1
    except jmespath.exceptions.JMESPathError:
        return None
    return None


def _nesting_error(offset: int, value: str, kind: str) -> jmespath.exceptions.ParseError:
    return jmespath.exceptions.ParseError(
        offset, value, kind,
        f"nesting deeper than {MAX_EXPRESSION_DEPTH} levels (flatten the expression, or "
        "compute the value in steps)")


#: The one interpreter every `search` visits with. `ParsedResult.search` makes a new
#: TreeInterpreter (with its Options and Functions) per call: about six times the cost of
#: the visit itself on a short path, some 70 times per order, and each one a reference
#: cycle left to the garbage collector. The interpreter keeps no state between visits
#: (only a cache of its own visit methods), so threads share it.
_INTERPRETER = TreeInterpreter()


def visit(expression: str, data: Any) -> Any:
    """A JMESPath expression's value, compiled once (`compile_path`) and visited by the shared
    interpreter; its errors are the caller's to word (`search`, the templates' filter)."""
    return _INTERPRETER.visit(compile_path(expression).parsed, data)


def search(expression: str, data: Any) -> Any:
    """Evaluate a JMESPath expression; a bad expression is a configuration error.

    A type error at evaluation time (a function applied to a block the record lacks) gives
    null: records legitimately omit blocks (`includedData` not asked for, no cancellation).
    """
    try:
        return visit(expression, data)
    except jmespath.exceptions.JMESPathTypeError:
        return None
    except jmespath.exceptions.JMESPathError as exc:
        raise ConnectorError(f"JMESPath {expression!r}: {exc}") from exc


def syntax_error(expression: str) -> str | None:
    """The JMESPath syntax error of an expression, or None (for validate)."""
    try:
        compile_path(expression)
    except jmespath.exceptions.JMESPathError as exc:
        return str(exc).splitlines()[0]
    return None


def bare_nulls(expression: str) -> list[int]:
    """Offsets of each bare `null` in an expression (for validate).

    JMESPath has no bare literals: `parent_item_id == null` compares with a field named
    `null` (absent, so it happens to give null until a record has such a key). The literal is
    `` `null` ``; a field so named is written `"null"`.
    """
    try:
        tokens = list(Lexer().tokenize(expression))
    except jmespath.exceptions.JMESPathError:
        return []  # jmespath-syntax reports it
    return [t["start"] for t in tokens if t["type"] == "unquoted_identifier" and t["value"] == "null"]


def _mapped(system: System, key: str, value: Any) -> Any:
    spec = system.normalise.maps.get(key)
    if spec is None:
        return value
    table = spec["map"]
    if value is None:
        return spec["default"]
    if isinstance(value, (str, int, float, bool)) and str(value) in table:
        return table[str(value)]
    return spec["default"] if spec["default"] is not None else value


def order_id(system: System, raw: Mapping[str, Any]) -> str | None:
    """The id `normalise` gives a raw record, without normalising the rest: a listing
    skips an order it already has before it costs a normalisation."""
    value = _mapped(system, "id", search(system.normalise.fields.get("id", "id"), raw))
    return None if value is None else str(value)


def normalise(system: System, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical order for one raw record of `system`."""
    norm = system.normalise
    order: dict[str, Any] = {name: None for name in CANONICAL_FIELDS}
    for name, expression in norm.fields.items():
        order[name] = _mapped(system, name, search(expression, raw))
    items = search(norm.items_path, raw) or []
    order["items"] = [
        {name: (search(expr, item) if isinstance(item, Mapping) else None)
         for name, expr in {**dict.fromkeys(ITEM_FIELDS, "`null`"), **norm.items}.items()}
        for item in (items if isinstance(items, list) else [])
    ]
    order["attributes"] = {
        name: _mapped(system, f"attributes.{name}", search(expr, raw))
        for name, expr in norm.attributes.items()
    }
    if order["id"] is not None:
        order["id"] = str(order["id"])
    order["system"] = system.name
    order["raw"] = dict(raw)
    for name in ("buyer", "shipping", "totals"):
        if order[name] is None:
            order[name] = {}
    return order


#: The canonical fields whose values a mapping declares (`domains:`), which rules test.
DOMAIN_FIELDS = ("status", "actor", "fulfilment")


def undeclared(system: System, order: Mapping[str, Any]) -> list[str]:
    """Each value of `order` outside `system`'s declared domains, described for a person:
    the value, the field, what it was read from, and the mapping file to declare it in.

    Null is not a value (an order that is not cancelled has no actor) and an empty domain
    declares nothing to check (Adobe Commerce has no actor), except a raw record's status:
    every rule tests it, so a record the mapping reads no status from matches none either.
    """
    found = []
    for name in DOMAIN_FIELDS:
        declared = getattr(system.domains, name)
        value = order.get(name)
        missing = value is None and name == "status" and bool(order.get("raw"))
        if not declared or value in declared or (value is None and not missing):
            continue
        read = " ".join((system.normalise.fields.get(name) or "").split())
        origin = ""
        if read and order.get("raw"):  # a raw record: where the mapping read the value
            origin = (f", read from {read!r}" if len(read) <= 60
                      else f", computed by normalise.{name}")
            if name in system.normalise.maps:
                origin += " and its map"
        what = f"no {name}{origin}, and null is not" if missing else f"{name} {value!r}{origin} is not"
        found.append(
            f"{system.name} order {order.get('id')}: {what} declared in {system.where.file} "
            f"(domains.{name}: {', '.join(map(str, declared))}); declare it there and give "
            f"the rules a choice for it: no rule was written for it")
    return found


def canonical(partial: Mapping[str, Any], system: System | str) -> dict[str, Any]:
    """A full canonical order from a partial one (rule tests, `explain` on canonical input).

    Every canonical field, sub-field and declared attribute is present (null when not
    given), as in a normalised order, so templates behave the same in tests as in runs.
    A structured field of another type (`"buyer": "x"`, `"items": [42]`) is refused with
    its name (`UsageError`): rules and templates read into them as objects.
    """
    order: dict[str, Any] = {name: None for name in CANONICAL_FIELDS}
    order.update({"items": [], "raw": {}})
    for name, fields in CANONICAL_SUBFIELDS.items():
        order[name] = {**dict.fromkeys(fields), **_object(partial, name)}
    declared = system.normalise.attributes if isinstance(system, System) else {}
    order["attributes"] = {**dict.fromkeys(declared), **_object(partial, "attributes")}
    order.update({k: v for k, v in partial.items() if k not in CANONICAL_SUBFIELDS and k != "attributes"})
    order["system"] = system.name if isinstance(system, System) else system
    if order["id"] is not None:
        order["id"] = str(order["id"])
    items = order["items"] or []
    if not isinstance(items, list):
        raise UsageError(f"order field 'items' is {_kind(items)}, not a list of objects "
                         "(write \"items\": [{\"sku\": ..., \"quantity\": ...}])")
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise UsageError(f"order field 'items[{index}]' is {_kind(item)}, not an object "
                             "(write each item as {\"sku\": ..., \"quantity\": ...})")
    order["items"] = [{**dict.fromkeys(ITEM_FIELDS), **item} for item in items]
    if not isinstance(order["raw"] or {}, Mapping):
        raise UsageError(f"order field 'raw' is {_kind(order['raw'])}, not an object "
                         "(the source's own record, or leave it out)")
    return order


def _object(partial: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = partial.get(name) or {}
    if not isinstance(value, Mapping):
        fields = CANONICAL_SUBFIELDS.get(name)
        example = f" with keys such as {', '.join(fields[:2])}" if fields else ""
        raise UsageError(f"order field '{name}' is {_kind(value)}, not an object "
                         f"(write it as a JSON object{example}, or leave it out)")
    return value


def _kind(value: Any) -> str:
    """A JSON value's type for a message (not the value: it is order data)."""
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "a number", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), f"a {type(value).__name__}")


def looks_canonical(record: Mapping[str, Any]) -> bool:
    """Whether a record given to `explain` is already canonical rather than raw."""
    return "status" in record and "id" in record and set(record) <= set(CANONICAL_FIELDS)


def _declared_sets(system: System) -> tuple[frozenset[Any] | None, ...]:
    """The status, actor and fulfilment a system declares, as sets (None: an empty domain,
    which tests nothing); null passes as an actor or fulfilment (it is not a value)."""
    domains = system.domains
    return (frozenset(domains.status) if domains.status else None,
            frozenset((*domains.actor, None)) if domains.actor else None,
            frozenset((*domains.fulfilment, None)) if domains.fulfilment else None)


def declared_check(source: System, target: System
                   ) -> Callable[[Mapping[str, Any], Mapping[str, Any] | None], bool]:
    """`(order, counterpart or None) -> True` when `undeclared` finds nothing in either
    (False may still find nothing: an unhashable value is left to `undeclared`, which says
    what is wrong).

    Planning asks this of every order and counterpart; `undeclared`, which words each finding
    for a person, cost about a quarter of planning an order (two calls, three fields each,
    `getattr` and tuple scans) even when, as nearly always, there is nothing to say. Here each
    declared domain is a set, both records are tested in one call, and an empty domain tests
    nothing, as there."""
    status, actor, fulfilment = _declared_sets(source)
    target_status, target_actor, target_fulfilment = _declared_sets(target)

    def check(order: Mapping[str, Any], counterpart: Mapping[str, Any] | None) -> bool:
        try:
            get = order.get
            if status is not None and (value := get("status")) not in status and (
                    value is not None or get("raw")):
                return False  # an undeclared status, or none read from a raw record
            if ((actor is not None and get("actor") not in actor)
                    or (fulfilment is not None and get("fulfilment") not in fulfilment)):
                return False
            if counterpart is None:
                return True
            get = counterpart.get
            if target_status is not None and (value := get("status")) not in target_status and (
                    value is not None or get("raw")):
                return False
            return ((target_actor is None or get("actor") in target_actor)
                    and (target_fulfilment is None or get("fulfilment") in target_fulfilment))
        except TypeError:  # unhashable: not a declared value
            return False

    return check
