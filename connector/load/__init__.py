"""Stage 1, load: YAML text → plain data plus the line and column of every node.

PyYAML's safe loader silently keeps the last of two equal keys and expands aliases without
bound. Integrators' files are read here instead with the safe composer, and the node tree is
turned into data by hand so that duplicate keys become findings, alias expansion and nesting
are bounded (a recursive alias is a finding, not a RecursionError), merge keys (`<<: *d`)
merge with the positions of the block they come from, and every value keeps its position
for later findings. The file itself is read by `files` (no FIFO, device or loop is read, no
read goes past the size limit); why a text is refused is told by `connector.load.refusals`.

The composer is libyaml's (`CSafeLoader`) when PyYAML was built with it: it builds the same
nodes with the same marks about six times faster than the pure-Python one, which otherwise
dominates `validate` on a large rule table. Syntax errors are re-read with the pure-Python
loader so that their wording (and the hint chosen from it) does not depend on the build.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.load import files
from connector.diagnostics import Diagnostic, error
from connector.load.refusals import MAX_DEPTH, compose_finding, depth_finding

#: Larger files are refused before parsing: no rule or mapping file is anywhere near this.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Bound on nodes produced while expanding aliases (a "billion laughs" file hits it at once).
MAX_NODES = 200_000

PathKey = tuple[str | int, ...]

#: libyaml's composer when available, else the pure-Python one (same nodes, same marks).
_FAST_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Loaded:
    """A loaded YAML document: its data and where each node of it stands in the file."""

    file: str
    data: Any
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict, compare=False)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict, compare=False)

    def position(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the node at `path`, or of its nearest ancestor.

        With `key=True`, the position of the mapping key naming the node, which is where an
        editor should put the cursor for "unknown key" kinds of findings.
        """
        path = tuple(path)
        while True:
            if key and path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            if not path:
                return (1, 1)
            path = path[:-1]


_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + t
    for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "binary")
)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (as it was, after).

    Loading builds large acyclic structures (the node tree, the data, a position per node)
    that the generational collector scans again and again for nothing: on a 1,000-rule table
    that was half the load time, and a third of a whole `validate`. What the block leaves
    behind is freed by reference counting; any cycle is collected by the next full collection.

    On the way out everything the collector tracks moves to its oldest generation
    (`gc.freeze()` then `gc.unfreeze()`, which scan nothing): merely re-enabling it would
    leave the block's objects in the youngest one, so the next few allocations would scan
    them all at once, and again a generation up (0.2 s of an 8,000-rule `validate`).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


class _TooLarge(Exception):
    """Internal signal of the node budget, not a ConnectorError: caught in this module and
    turned into a finding, never raised past it."""


class _TooDeep(Exception):
    """Internal signal of the depth bound (a deep document or a recursive alias), carrying
    the first node past it: caught in this module and turned into a finding."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__()
        self.node = node




def load_text(text: str, file: str) -> tuple[Loaded | None, list[Diagnostic]]:
    """Parse one YAML document. Returns the loaded document or the findings that stop it."""
    if not text.strip():
        return None, [error(file, 1, 1, "yaml-empty", "file is empty", "write a YAML mapping")]
    if "\x00" in text:
        return None, [
            error(file, 1, 1, "yaml-binary", "file is not text (it contains NUL bytes)")
        ]
    with collector_paused():
        return _load(text, file)


def _load(text: str, file: str) -> tuple[Loaded | None, list[Diagnostic]]:
    try:
        node, loader = _compose(text, _FAST_LOADER)
    except (yaml.YAMLError, RecursionError) as exc:
        return None, [compose_finding(exc, text, file, _FAST_LOADER)]
    if node is None:
        return None, [error(file, 1, 1, "yaml-empty", "file has no YAML document")]
    findings: list[Diagnostic] = []
    values: dict[PathKey, tuple[int, int]] = {}
    keys: dict[PathKey, tuple[int, int]] = {}
    budget = _Budget()
    try:
        data = _build(node, (), file, loader, values, keys, findings, budget)
    except _TooDeep as deep:
        return None, [depth_finding(node, deep.node, file)]
    except _TooLarge:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        return None, [
            error(
                file, line, col, "yaml-too-large",
                f"document expands to more than {MAX_NODES} nodes (alias bomb?)",
                "remove the repeated aliases",
            )
        ]
    return Loaded(file, data, values, keys), findings


def _compose(text: str, cls: type[yaml.SafeLoader]) -> tuple[yaml.Node | None, yaml.SafeLoader]:
    loader = cls(text)
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


def load_file(path: Path, display: str | None = None) -> tuple[Loaded | None, list[Diagnostic]]:
    """Read and parse a file, refusing huge, binary, undecodable or special input (a FIFO, a
    device, a symlink loop: `files.read_bytes`) with a finding."""
    name = display or str(path)
    raw, refused = files.read_bytes(path, name, MAX_FILE_BYTES)
    if raw is None:
        return None, refused
    if b"\x00" in raw:
        return None, [error(name, 1, 1, "yaml-binary", "file is not text (it contains NUL bytes)")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [
            error(name, 1, 1, "yaml-binary", f"file is not UTF-8 text (byte {exc.start})")
        ]
    return load_text(text, name)


def _build(
    node: yaml.Node,
    path: PathKey,
    file: str,
    loader: yaml.SafeLoader,
    values: dict[PathKey, tuple[int, int]],
    keys: dict[PathKey, tuple[int, int]],
    findings: list[Diagnostic],
    budget: _Budget,
    depth: int = 1,
) -> Any:
    """The data of a node tree, each node's position recorded under its path.

    The hot loop of loading (one call per node of a 100,000-node table): plain string
    scalars, most nodes, are taken inline, without a call of their own. `depth` counts the
    mappings and lists around the node: past `MAX_DEPTH` (a deep file, or an alias inside
    its own anchor) `_TooDeep` stops the build before Python's recursion limit does."""
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise _TooLarge
    mark = node.start_mark
    if path not in values:
        values[path] = (mark.line + 1, mark.column + 1)
    tag = node.tag
    if tag not in _PLAIN_TAGS:
        findings.append(error(file, mark.line + 1, mark.column + 1, "yaml-tag",
                              f"unsupported YAML tag {tag!r}", "only plain YAML (no tags) is accepted"))
        return None
    kind = type(node)
    if kind is _SCALAR:
        if tag == _STR:
            return node.value
        try:
            return _scalar(node, loader)
        except (ValueError, KeyError, IndexError, TypeError, OverflowError):
            # a tag that does not fit its value: `!!float x`, `!!int ''`, `!!bool maybe`
            findings.append(error(file, mark.line + 1, mark.column + 1, "yaml-tag",
                                  f"{tag.rsplit(':', 1)[-1]!r} cannot be {node.value!r}",
                                  "remove the tag: plain YAML gives a scalar its type"))
            return None
    if depth > MAX_DEPTH:
        raise _TooDeep(node)
    if kind is _MAPPING or isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key_mark = key_node.start_mark
            line, col = key_mark.line + 1, key_mark.column + 1
            if type(key_node) is not _SCALAR and not isinstance(key_node, yaml.ScalarNode):
                findings.append(error(file, line, col, "yaml-complex-key", "keys must be plain strings"))
                continue
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = key_node.value if key_node.tag == _STR else _scalar(key_node, loader)
            if not isinstance(key, str):
                key = str(key)
            child = path + (key,)
            if key in result:
                first = keys.get(child, (0, 0))
                findings.append(
                    error(
                        file, line, col, "yaml-duplicate-key",
                        f"duplicate key '{key}' (first defined at line {first[0]})",
                        "YAML keeps only one of them; remove or rename one",
                    )
                )
                continue
            keys[child] = (line, col)
            if type(value_node) is _SCALAR and value_node.tag == _STR:  # inline: a plain string
                budget.nodes += 1
                if budget.nodes > MAX_NODES:
                    raise _TooLarge
                if child not in values:
                    value_mark = value_node.start_mark
                    values[child] = (value_mark.line + 1, value_mark.column + 1)
                result[key] = value_node.value
            else:
                result[key] = _build(value_node, child, file, loader, values, keys, findings,
                                     budget, depth + 1)
        if merges:
            return _merged(result, merges, path, file, loader, values, keys, findings, budget, depth)
        return result
    if kind is _SEQUENCE or isinstance(node, yaml.SequenceNode):
        return [
            _build(child, path + (i,), file, loader, values, keys, findings, budget, depth + 1)
            for i, child in enumerate(node.value)
        ]
    return _scalar(node, loader)


def _merged(
    own: dict[str, Any],
    merges: list[yaml.Node],
    path: PathKey,
    file: str,
    loader: yaml.SafeLoader,
    values: dict[PathKey, tuple[int, int]],
    keys: dict[PathKey, tuple[int, int]],
    findings: list[Diagnostic],
    budget: _Budget,
    depth: int,
) -> dict[str, Any]:
    """A mapping with its merge keys applied (`<<: *defaults`, or `<<: [*a, *b]`), as YAML
    1.1 defines them: each merged mapping gives the keys the mapping does not write itself,
    an earlier one winning over a later one; merged keys come first, as PyYAML orders them.

    Integrators share blocks between rules this way, so a merged value keeps the position
    of the anchored block it comes from: a finding about it points at the text to edit."""
    merged: dict[str, Any] = {}
    for value_node in merges:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                mark = source.start_mark
                findings.append(error(file, mark.line + 1, mark.column + 1, "yaml-merge-invalid",
                                      "a merge key '<<' takes a mapping or a list of mappings",
                                      "write '<<: *anchor' naming a mapping, or quote '<<' "
                                      "if it is meant as a key"))
                continue
            source_values: dict[PathKey, tuple[int, int]] = {}
            source_keys: dict[PathKey, tuple[int, int]] = {}
            # One level deeper: an anchored mapping that merges itself must reach the bound.
            data = _build(source, path, file, loader, source_values, source_keys, findings,
                          budget, depth + 1)
            chosen = {key for key in data if key not in own and key not in merged}
            merged.update((key, data[key]) for key in data if key in chosen)
            at = len(path)
            for table, built in ((values, source_values), (keys, source_keys)):
                for where, position in built.items():
                    if len(where) > at and where[at] in chosen and where not in table:
                        table[where] = position
    merged.update(own)
    return merged


_SCALAR, _MAPPING, _SEQUENCE = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    # Strings are most scalars: take them as they are, without the constructor's bookkeeping.
    if node.tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    # Timestamps stay strings: the schemas and templates treat dates as ISO-8601 text.
    if node.tag == "tag:yaml.org,2002:timestamp":
        return str(node.value)
    return loader.construct_object(node, deep=True)


def walk(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every (path, value) of a loaded document, parents before children."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, path + (i,))
