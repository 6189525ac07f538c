"""Stage 2a, validate against the shipped JSON Schemas.

For `oneOf`/`anyOf` failures only the best-matching branch is reported (jsonschema's
`best_match`, as check-jsonschema does), positioned on the offending node, instead of a dump
of every branch's complaint.

Whether a document is valid is first asked of `jsonschema-rs` (a Rust implementation of the
same drafts, two orders of magnitude faster: on a 1,000-rule table 8 ms against 0.5 s, which
was the largest part of `validate`). Only a document it does not call valid goes through
`jsonschema`, which words the findings, so the findings are always jsonschema's. That is
sound because on what our schemas use, jsonschema-rs is at least as strict: its regexes
anchor `$` at the very end (Python's also before a final newline), formats are asserted by
neither, and data it cannot read (bytes, NaN) is left to jsonschema. The one way it is more
lenient, a tuple taken for an array, cannot occur: loaded YAML has lists (tests/test_schema.py
compares the two on every fixture). Without jsonschema-rs, jsonschema decides alone.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from connector.diagnostics import Diagnostic, did_you_mean, error
from connector.load import Loaded

if TYPE_CHECKING:  # imported when a document is not valid: `validate` of a clean project skips it
    import jsonschema
    from jsonschema.exceptions import ValidationError

KINDS = ("project", "mapping", "rules")


@functools.cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a file kind, as shipped inside the package."""
    text = resources.files("connector").joinpath(f"schemas/{kind}.schema.json").read_text()
    result: dict[str, Any] = json.loads(text)
    return result


@functools.cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema(kind))
    return cls(schema(kind))


@functools.cache
def _fast(kind: str) -> Callable[[Any], bool] | None:
    """jsonschema-rs's `is_valid` for this kind (None when it is not installed)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    validator = jsonschema_rs.validator_for(schema(kind), validate_formats=False)
    is_valid: Callable[[Any], bool] = validator.is_valid
    return is_valid


def valid(data: Any, kind: str) -> bool:
    """Whether jsonschema-rs calls the data valid (False when it cannot tell: not installed,
    or data it does not take, such as bytes or non-string keys)."""
    fast = _fast(kind)
    if fast is None:
        return False
    try:
        return bool(fast(data))
    except (ValueError, TypeError, OverflowError, RecursionError):
        return False


def check(doc: Loaded, kind: str) -> list[Diagnostic]:
    """Schema findings for a loaded document, one per independent problem."""
    if valid(doc.data, kind):
        return []
    from jsonschema.exceptions import best_match

    findings: list[Diagnostic] = []
    errors = list(_validator(kind).iter_errors(doc.data))
    # One finding per failing location: the best match among the errors under it.
    by_path: dict[tuple[Any, ...], list[ValidationError]] = {}
    for err in errors:
        by_path.setdefault(tuple(err.absolute_path), []).append(err)
    for path, group in sorted(by_path.items(), key=lambda item: doc.position(item[0])):
        # A misspelt key fails both `additionalProperties` and `required`: the unknown key
        # (with its did-you-mean) is the finding that helps, so it goes first.
        unknown = [e for e in group if e.validator == "additionalProperties"]
        for err in unknown or [best_match(group)]:
            findings.append(_diagnostic(doc, err, kind))
    return _drop_nested(findings)


def _drop_nested(findings: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[int, int, str]] = set()
    result = []
    for f in findings:
        key = (f.line, f.column, f.message)
        if key not in seen:
            seen.add(key)
            result.append(f)
    return result


def _diagnostic(doc: Loaded, err: ValidationError, kind: str) -> Diagnostic:
    from jsonschema.exceptions import best_match

    # Descend to the deepest error of the best branch: it names the real problem.
    while err.context:
        deeper = best_match(err.context)
        if deeper is None:
            break
        err = deeper
    path = tuple(err.absolute_path)
    where = ".".join(str(p) for p in path) or "(top level)"
    validator = err.validator
    schema_node: dict[str, Any] = err.schema if isinstance(err.schema, dict) else {}
    if validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = list((schema_node.get("properties") or {}).keys())
        extras = [k for k in err.instance if k not in allowed]
        patterns = schema_node.get("patternProperties") or {}
        if patterns:
            import re

            extras = [k for k in extras if not any(re.search(p, k) for p in patterns)]
        if extras:
            key = extras[0]
            line, col = doc.position(path + (key,), key=True)
            message = f"unknown key '{key}' in {where}{did_you_mean(key, allowed)}"
            return error(doc.file, line, col, "schema-unknown-key", message,
                         f"allowed keys: {', '.join(allowed)}" if allowed else "")
    if _empty_condition(err):
        line, col = doc.position(path)
        return error(doc.file, line, col, "empty-condition",
                     f"{where}: empty condition: it tests nothing", _empty_condition_hint(path))
    if validator == "required":
        line, col = doc.position(path, key=True)
        return error(doc.file, line, col, "schema-missing-key", f"{where}: {err.message}")
    if validator == "enum":
        line, col = doc.position(path)
        allowed_values = list(err.validator_value) if isinstance(err.validator_value, (list, tuple)) else []
        suggestion = did_you_mean(str(err.instance), [str(v) for v in allowed_values])
        return error(
            doc.file, line, col, "schema-invalid-value",
            f"{where}: {err.instance!r} is not one of {list(allowed_values)}{suggestion}",
        )
    if "propertyNames" in err.schema_path:
        name = str(err.instance)
        line, col = doc.position(path + (name,), key=True)
        return error(doc.file, line, col, "schema-invalid-name", f"{where}: invalid name {name!r}",
                     "names are lower case letters, digits, '_' and '-' (for example cancel_order)")
    line, col = doc.position(path)
    return error(doc.file, line, col, "schema-invalid", f"{where}: {err.message}",
                 _invalid_hint(err, schema_node, kind))


_CONDITION = {"$ref": "#/$defs/condition"}


def _empty_condition(err: ValidationError) -> bool:
    """`when: {}`, `precondition: {}`, `not: {}`, `all: []`, `any: []`: a condition with
    nothing in it. Refused rather than read as "always": a half-written rule would act on
    every order, and analysis would see nothing wrong (docs/format.md, Conditions)."""
    node = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "minProperties":
        return "patternProperties" in node and "expr" in (node.get("properties") or {})
    return err.validator == "minItems" and node.get("items") == _CONDITION


def _empty_condition_hint(path: tuple[Any, ...]) -> str:
    key = path[-1] if path else ""
    if len(path) == 3 and path[0] == "rules" and key == "when":
        return ("an empty condition is not read as 'always'; for a rule that takes every order "
                "say so: `when: {status: {exists: true}}`; for what earlier rules leave, name "
                "the statuses: `when: {status: {in: [...]}}` (analysis checks both)")
    if key == "follow_up":
        return ("an empty condition is not read as 'always': `follow_up: true` is the default "
                "(leave it out), `follow_up: false` turns it off")
    if key in ("precondition", "when"):
        return f"an empty condition is not read as 'always': to always run, leave `{key}` out"
    return "an empty condition is not read as 'always': remove it, or write the test it was meant to hold"


_KINDS = {"object": "a mapping ('key: value' lines or {...})", "array": "a list ('- ' items or [...])",
          "string": "a string", "integer": "a whole number", "number": "a number",
          "boolean": "true or false", "null": "nothing (null)"}


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return "nothing" if value is None else "a string"


def _invalid_hint(err: ValidationError, schema_node: dict[str, Any], kind: str) -> str:
    """What the key takes, said in YAML terms, and where to read its full shape."""
    more = f"`connector schema {kind}` prints the full shape"
    described = schema_node.get("description")
    if err.validator == "type":
        wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        names = " or ".join(_KINDS.get(str(w), str(w)) for w in wanted)
        return f"this key takes {names}, not {_kind_of(err.instance)}; {more}"
    if err.validator == "pattern":
        return f"the value must match {err.validator_value}; {described or more}"
    if err.validator in ("minItems", "minProperties", "minLength"):
        return f"it must not be empty; {more}"
    if err.validator == "const":
        return f"the only value allowed here is {err.validator_value!r}"
    return str(described) if described else more
