"""Random hostile input for `explain`: order records mutated from the shipped examples, and
templates built to exhaust memory, time or the stack, or to print a secret transformed.

Shared by tests/test_explain_fuzz.py (a few dozen cases, fixed seed) and
benchmarks/fuzz_explain.py (hundreds, before and after). Everything is drawn from one
`random.Random`, so a seed names a run.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
ORDER = EXAMPLES / "amazon-order-cancelled.json"
TARGET = EXAMPLES / "vtex-order-handling.json"
FLOW = "amazon-to-vtex"
#: The secret every run sets (CONNECTOR_VTEX_APP_KEY): it must never be printed, whole or
#: in pieces.
SECRET = "SECRETKEY42"
LEAKS = (SECRET, "S-E-C-R", "24YEKTERCES", "'S', 'E', 'C'", "SECRETKEY")

VALUES: list[Any] = [
    42, -1, 0, 1.5e308, True, None, "", "x", "\ud800", "\x1b[2J\x1b[31mred\r", "\u202egnp",
    "9" * 5000, [], {}, [42], {"a": "b"}, ["x", {"y": [1]}], "CANCELLED", "UNSHIPPED",
    "2026-13-45T99:99:99Z", "{{ settings }}", "%s%n", "../../admin", "a\r\nX-Evil: 1",
]

BOMBS = [
    "{{ 'x' * 10**9 }}", "{{ '%*s' % (10**9, 'x') }}", "{{ 'x' | center(10**9) }}",
    "{{ [0] * 10**8 }}", "{{ lipsum(10**5) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s }}{% endmacro %}{{ d('x', 40) }}",
    "{{ '{:>1000000000}'.format('x') }}", "{{ 'x'.ljust(10**9) }}",
    "{{ ('x' * 100000) | replace('x', 'x' * 100000) }}",
    "{{ [[0] * 100000] * 100000 }}", "{{ [1] | batch(10**9, 0) | list }}",
    "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
]
SUBJECTS = ["order.id", "order.items", "order.raw", "order.buyer", "settings.app_key",
            "settings.app_token", "args.reason", "'x'", "[0]", "target.id", "order.totals"]
OPERATIONS = [
    " * 10**9", " | center(10**9)", " | join('-')", " | reverse | join", " | list",
    " | tojson", " ~ {s}", " | replace('', 'xx')", " | batch(10**9, 0) | list",
    " | sum(start=[])", " | string | length", " | int", " | upper", "[0]", " | first",
    " | jmespath('[')", " | add_days(1)", " | epoch_ms", " | b64encode", " | merge_each(1)",
    " | indent(10**9)", " | wordwrap(1)", " * 10", " | length", " | default('-')",
]


def template(rng: random.Random) -> str:
    """A hostile template: a known bomb, or a subject put through one to three operations."""
    if rng.random() < 0.35:
        return rng.choice(BOMBS)
    expression = rng.choice(SUBJECTS)
    for _ in range(rng.randint(1, 3)):
        expression = f"({expression}{rng.choice(OPERATIONS).format(s=rng.choice(SUBJECTS))})"
    return "{{ " + expression + " }}"


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _nested(depth: int) -> Any:
    """Nesting `depth` deep, as a marker `write_order` expands (json.dumps recurses)."""
    return f"__deep_{depth}__"


def order(rng: random.Random, base: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """`base` with one to four mutations: a value replaced by one of another type, a key
    deleted or added, a value wrapped in a list, nesting hundreds deep."""
    record: Any = copy.deepcopy(base)
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(list(_paths(record)))
        kind = rng.random()
        new: Any
        if kind < 0.55:
            new = copy.deepcopy(rng.choice(VALUES))
        elif kind < 0.65:
            new = _nested(rng.choice([10, 70, 300, 1200]))
        elif kind < 0.8 and path:
            new = [None]  # marker: delete
        else:
            new = [copy.deepcopy(_get(record, path))]
        if not path:
            if isinstance(record, dict) and kind < 0.9:
                record[rng.choice(["id", "status", "items", "buyer", "\x1b[2J", "raw"])] = new
            continue
        parent = _get(record, path[:-1])
        if new == [None] and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif isinstance(parent, (dict, list)):
            parent[path[-1]] = new
    return record


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def canonical(rng: random.Random) -> dict[str, Any]:
    """A canonical order to mutate (explain reads both forms)."""
    return {"id": "113-0000000-0000001", "status": "CANCELLED", "actor": "seller",
            "fulfilment": "merchant", "buyer": {"name": "A"}, "items": [{"sku": "S", "quantity": 1}],
            "totals": {"amount": 10, "currency": "USD"}}


def project_with(directory: Path, text: str) -> Path:
    """A copy of the shipped project whose VTEX cancel step also sends `text` (a template)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("connector.yaml", "mappings", "rules"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, directory / name)
    mapping = directory / "mappings" / "vtex.yaml"
    original = mapping.read_text()
    line = '          reason: "{{ args.reason }}"'
    mapping.write_text(original.replace(line, f"{line}\n          note: {json.dumps(text)}", 1))
    return directory


def write_order(path: Path, record: Any) -> Path:
    """The record as JSON (ensure_ascii: a lone surrogate is written `\\ud800`), each
    nesting marker expanded into that many levels of lists."""
    text = json.dumps(record, ensure_ascii=True)
    for depth in (10, 70, 300, 1200):
        text = text.replace(f'"__deep_{depth}__"', "[" * depth + '"deep"' + "]" * depth)
    path.write_text(text)
    return path


def cached(checked: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """`explain.checked` validating each project once: its configuration, or its
    ConfigError raised again (validation is what takes the time; the loop is about orders
    and templates)."""
    results: dict[Path, Any] = {}

    def check(root: Path) -> Any:
        if root not in results:
            try:
                results[root] = checked(root)
            except Exception as exc:  # noqa: BLE001: raised again, as it came
                results[root] = exc.with_traceback(None)  # not the frames: their values
        if isinstance(results[root], Exception):
            raise results[root]
        return results[root]

    return check
