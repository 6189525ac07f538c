"""Mapping variants: one system whose requests differ by the value of one of its settings.

A marketplace can speak different APIs per market under one name and one set of
credentials (another country's listing endpoints, request bodies and record shapes). Rather than a copy of the whole mapping per market, a mapping declares
`variant_by: <setting>` and `variants: {<value>: <overlay>}`; each overlay is merged over the
mapping at load time, the merged document is schema-checked and built like any mapping, and
the runtime picks the variant whose key is the setting's resolved value (`plan.prepare`).

Merge rules (docs/format.md, "Variants"): mappings merge key by key, recursively; `null`
removes a key; any other value (a string, a list) replaces the mapping's. Every merged node
keeps the position it came from, so findings point at the overlay line that caused them.
"""

from __future__ import annotations

import json
from typing import Any

from connector.diagnostics import Diagnostic, did_you_mean, error
from connector.load import Loaded, PathKey

__all__ = ["VARIANT_KEYS", "merged", "variant_findings", "variant_keys"]

#: The top-level keys that hold the variants themselves (not merged into a variant).
VARIANT_KEYS = ("variant_by", "variants")


def variant_keys(doc: Loaded) -> list[str]:
    """The values the mapping declares variants for (none when it has no `variants`)."""
    variants = doc.data.get("variants") if isinstance(doc.data, dict) else None
    return [str(key) for key in variants] if isinstance(variants, dict) else []


def _merge(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict):
        result = dict(base)
        for key, value in overlay.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = _merge(base.get(key), value)
        return result
    return overlay


def merged(doc: Loaded, value: str) -> Loaded:
    """The mapping with the overlay of variant `value` merged in (positions included)."""
    data = {k: v for k, v in doc.data.items() if k not in VARIANT_KEYS}
    overlay = doc.data["variants"][value] or {}
    root: PathKey = ("variants", value)
    values = dict(doc.values)
    keys = dict(doc.keys)
    for table, target in ((doc.values, values), (doc.keys, keys)):
        for path, position in table.items():
            if path[:2] == root and len(path) > 2:
                target[path[2:]] = position
    return Loaded(doc.file, _merge(data, overlay), values, keys)


def variant_findings(doc: Loaded) -> list[Diagnostic]:
    """`variant_by` names a declared setting; each variant key is a value that setting allows."""
    data = doc.data
    if not isinstance(data, dict) or "variant_by" not in data:
        return []
    name = str(data["variant_by"])
    declared = data.get("settings") or {}
    if name not in declared:
        line, col = doc.position(("variant_by",))
        return [error(doc.file, line, col, "variant-setting-unknown",
                      f"variant_by names '{name}', which the mapping's settings do not declare"
                      f"{did_you_mean(name, declared)}",
                      "declare the setting under settings: (its value picks the variant)")]
    allowed = (declared[name] or {}).get("enum")
    findings: list[Diagnostic] = []
    default = (declared[name] or {}).get("default")
    for key in variant_keys(doc):
        problem = ""
        if allowed is not None and key not in [str(v) for v in allowed]:
            problem = (f"is not a value setting '{name}' allows "
                       f"({', '.join(json.dumps(v, ensure_ascii=False) for v in allowed)})")
        elif default is not None and key == str(default):
            problem = f"is the default of setting '{name}': the mapping itself is that variant"
        if problem:
            line, col = doc.position(("variants", key), key=True)
            findings.append(error(doc.file, line, col, "variant-value-unknown",
                                  f"variant '{key}' {problem}",
                                  f"name each variant after a value of '{name}' other than its default"))
    return findings
