"""The finite case space that rule analysis reasons over, with conditions as bit sets.

Rules test a few fields with small declared domains (the source's status, actor and
fulfilment, the counterpart's status or its absence, enum settings, boolean flags). Every
combination of those values is one *case*; a condition becomes the set of cases it matches,
held as the bits of one Python integer. Shadowing, overlap and gaps are then a handful of
`&`, `|` and `~` on integers, so 1,000 rules over thousands of cases take milliseconds.

A test on any other path (`attributes.x`, `items.0.sku`, comparisons, `expr`) is *opaque*: it
may be true or false in every case. Each condition therefore gets two sets: `must` (cases
where it is true whatever the opaque tests say) and `may` (cases where it can be true). Every
check picks the one that cannot produce a false finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

from connector.conditions import Predicate, compile_condition
from connector.model import Condition


class _Absent:
    """The value of the target dimension when there is no counterpart order."""

    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = _Absent()


class _Present:
    """Some value, for a path tested only with `exists` (its value does not matter)."""

    def __repr__(self) -> str:
        return "present"


PRESENT: Any = _Present()

#: Turns one value of a dimension into the context a condition leaf is evaluated against.
Builder = Callable[[Any], dict[str, Any]]
#: Maps a condition path to (dimension key, builder), or None when the path is opaque.
Resolver = Callable[[str], "tuple[str, Builder] | None"]


@dataclass(frozen=True)
class Dim:
    """One finite dimension of the case space.

    `known` lists the literals a test may name (None: not checked); `noun` and `declared`
    word the unknown-value finding ("a status of amazon", "domains.status of amazon").
    """

    key: str
    values: tuple[Any, ...]
    known: tuple[Any, ...] | None = None
    noun: str = ""
    declared: str = ""


def nest(path: str) -> Builder:
    """A builder putting the value at a dotted path, as the runtime context would hold it."""
    parts = path.split(".")

    def build(value: Any) -> dict[str, Any]:
        ctx: Any = value
        for part in reversed(parts):
            ctx = {part: ctx}
        return dict(ctx)

    return build


def presence(name: str) -> Builder:
    """A builder for an order that may be absent (`target`, or `order` of a target action)."""

    def build(value: Any) -> dict[str, Any]:
        return {name: None if value is ABSENT else {"status": value}}

    return build


def show(value: Any) -> str:
    """A value as findings print it (YAML spelling for null and booleans)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Space:
    """The cartesian product of some dimensions, with a bit mask per dimension value."""

    def __init__(self, dims: Sequence[Dim]) -> None:
        self.dims = tuple(dims)
        self.index = {d.key: d for d in self.dims}
        self.size = prod(len(d.values) for d in self.dims)
        self.full = (1 << self.size) - 1
        self.value_masks: dict[str, tuple[int, ...]] = {}
        self.strides: dict[str, int] = {}
        stride = 1
        for dim in self.dims:
            period = stride * len(dim.values)
            repeat = self.full // ((1 << period) - 1)  # 1 bit at the start of every period
            block = (1 << stride) - 1
            self.value_masks[dim.key] = tuple(
                (block << (k * stride)) * repeat for k in range(len(dim.values))
            )
            self.strides[dim.key] = stride
            stride = period

    def mask(self, key: str, values: Iterable[Any]) -> int:
        """The cases where dimension `key` takes one of `values`."""
        wanted = list(values)
        dim = self.index[key]
        result = 0
        for value, vmask in zip(dim.values, self.value_masks[key]):
            if any(value is w or (value == w and type(value) is type(w)) for w in wanted):
                result |= vmask
        return result

    def projection(self, mask: int, key: str) -> list[Any]:
        """The values dimension `key` takes somewhere in `mask`."""
        dim = self.index[key]
        return [v for v, m in zip(dim.values, self.value_masks[key]) if mask & m]

    def first_case(self, mask: int) -> dict[str, Any]:
        """The lowest case in a non-empty mask, as dimension key → value."""
        position = (mask & -mask).bit_length() - 1
        return {
            d.key: d.values[(position // self.strides[d.key]) % len(d.values)] for d in self.dims
        }

    def describe_values(self, key: str, values: Sequence[Any]) -> str:
        """`status=X`, `actor in [a, b]`, `status not in [X]`, `target absent`, ..."""
        domain = self.index[key].values
        if key == "target":
            present = [v for v in values if v is not ABSENT]
            words = []
            if len(present) < len(values):
                words.append("target absent")
            if len(present) == len(domain) - 1:
                words.append("target present")
            elif len(present) == 1:
                words.append(f"target.status={present[0]}")
            elif present:
                words.append(f"target.status in [{', '.join(map(show, present))}]")
            return " or ".join(words)
        if len(values) == 1:
            return f"{key}={show(values[0])}"
        excluded = [v for v in domain if v not in values]
        if len(excluded) < len(values) / 2:
            return f"{key} not in [{', '.join(map(show, excluded))}]"
        return f"{key} in [{', '.join(map(show, values))}]"

    def boxes(self, mask: int, dims: Sequence[Dim] | None = None) -> list[dict[str, list[Any]]]:
        """`mask` as a union of products of per-dimension value lists (disjoint, in order).

        Values of the first dimension whose slices look alike are grouped, then each group's
        slice is split along the remaining dimensions in turn.
        """
        dims = self.dims if dims is None else dims
        if not dims:
            return [{}] if mask else []
        dim, stride = dims[0], self.strides[dims[0].key]
        groups: dict[int, list[Any]] = {}
        for k, (value, vmask) in enumerate(zip(dim.values, self.value_masks[dim.key])):
            if mask & vmask:
                groups.setdefault((mask & vmask) >> (k * stride), []).append(value)
        return [
            {dim.key: values, **rest}
            for pattern, values in groups.items()
            for rest in self.boxes(pattern, dims[1:])
        ]

    def describe(
        self,
        mask: int,
        keys: Iterable[str] | None = None,
        within: int | None = None,
        exact: bool = True,
        limit: int = 3,
    ) -> str:
        """The cases of `mask` in words, naming only the dimensions in `keys` (default: all).

        Dimensions that vary as freely as in `within` (default: every case) are left out, so
        "" means "no restriction". The cases are worded as up to `limit` alternatives joined
        by "; or "; with `exact` False, as each dimension's values (an over-approximation).
        """
        if not mask:
            return "no case"
        base = self.full if within is None else within
        wanted = None if keys is None else set(keys)
        chosen = [d for d in self.dims if wanted is None or d.key in wanted]
        free = {d.key: self.projection(base, d.key) for d in chosen}
        if not exact:
            boxes = [{d.key: self.projection(mask, d.key) for d in chosen}]
        else:
            boxes = self.boxes(mask)
        texts = [
            ", ".join(self.describe_values(d.key, box[d.key]) for d in chosen if box[d.key] != free[d.key])
            for box in boxes
        ]
        if len(texts) > limit:
            return "; or ".join(texts[:limit]) + f"; or {len(texts) - limit} other shapes"
        return "; or ".join(texts)


class Evaluator:
    """Turns conditions into (must, may) masks in one space, for one kind of context."""

    def __init__(self, space: Space, resolver: Resolver) -> None:
        self.space = space
        self.resolver = resolver
        self._cache: dict[tuple[str, str, Any], int | None] = {}

    def leaf_mask(self, leaf: Condition) -> int | None:
        """The cases a test leaf matches, or None when the leaf is opaque."""
        if leaf.op in ("true", "expr"):
            return self.space.full if leaf.op == "true" else None
        try:
            key = (leaf.path, leaf.op, leaf.value)
            hash(key)
        except TypeError:
            return self._compute(leaf)
        if key not in self._cache:
            self._cache[key] = self._compute(leaf)
        return self._cache[key]

    def _compute(self, leaf: Condition) -> int | None:
        found = self.resolver(leaf.path)
        if found is None or found[0] not in self.space.index:
            return None
        dim_key, build = found
        test: Predicate = compile_condition(leaf)  # the runtime's own semantics
        dim = self.space.index[dim_key]
        result = 0
        for value, vmask in zip(dim.values, self.space.value_masks[dim_key]):
            if test(build(value)):
                result |= vmask
        return result

    def masks(self, cond: Condition) -> tuple[int, int]:
        """(must, may): the cases where `cond` surely holds, and where it can hold."""
        full = self.space.full
        if cond.op in ("all", "any"):
            parts = [self.masks(c) for c in cond.children]
            if cond.op == "all":
                must, may = full, full
                for m, y in parts:
                    must, may = must & m, may & y
            else:
                must, may = 0, 0
                for m, y in parts:
                    must, may = must | m, may | y
            return must, may
        if cond.op == "not":
            m, y = self.masks(cond.children[0])
            return full & ~y, full & ~m
        mask = self.leaf_mask(cond)
        return (0, full) if mask is None else (mask, mask)

    def keys(self, leaves: Iterable[Condition]) -> list[str]:
        """The dimensions the given leaves test (opaque leaves excluded)."""
        found = [self.resolver(leaf.path) for leaf in leaves if leaf.op not in ("true", "expr")]
        return [f[0] for f in found if f is not None and f[0] in self.space.index]
