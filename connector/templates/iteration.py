"""Bounds on going through items (`limits` has the budget they are charged to): a
`{% for %}`'s iterations (`loop`, steps), the items a filter goes through (`consumed`,
`ticked`: ticks of the clock), and an iterator taken into a list measured as it comes
(`taken`: `join` and `str.join` of a `map`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connector.templates.limits import MAX_VALUE, Budget, TemplateLimit, charge, current, text_size


#: Iterables whose length is the number of iterations, charged when the loop starts.
_SIZED = frozenset({list, tuple, dict, range, str})


def loop(iterable: Any) -> Any:
    """A `{% for %}`'s iterable: each iteration is a step of the render's budget (a list's,
    a range's... all at once, as the loop starts; another iterable's one by one). A loop of
    more than `LOOP_CLOCK_EVERY` iterations charged at once reads the clock every so many
    of them: its body may cost milliseconds with no step of its own (`{{ x in big }}`), and
    such a loop ran 99 s."""
    budget_ = current()
    if budget_ is None:
        return iterable
    if type(iterable) in _SIZED:
        budget_.step(len(iterable))
        return iterable if len(iterable) <= LOOP_CLOCK_EVERY else _clocked(iterable, budget_)
    return _counted(iterable, budget_)


#: Iterations of a loop charged at once between two readings of the clock.
LOOP_CLOCK_EVERY = 64


def _clocked(iterable: Any, budget_: Budget) -> Iterator[Any]:
    for n, item in enumerate(iterable):
        if not n % LOOP_CLOCK_EVERY:
            budget_.clock()
        yield item


def _counted(iterable: Any, budget_: Budget) -> Iterator[Any]:
    for item in iterable:
        budget_.step()
        yield item


def consumed(iterable: Any) -> None:
    """A filter about to go through a collection (`max`, `sort`, `sum`...): its length in
    ticks, so a loop of `range(100000) | max` reaches the clock (it ran 23 s without). An
    iterator is not counted here: the lazy filter that gives it (`ticked`) counts its items."""
    if type(iterable) in _ITERATED:
        budget_ = current()
        if budget_ is not None:
            budget_.tick(len(iterable))


def ticked(iterable: Any) -> Any:
    """The value of a lazy filter (`map`, `select`...): a collection's length ticked at once,
    an iterator's items one by one as the filter takes them, so a chain of them reaches the
    clock (`range(100000) | select | select | ...` ran on for as long as the chain was)."""
    budget_ = current()
    if budget_ is None:
        return iterable
    if type(iterable) in _ITERATED:
        budget_.tick(len(iterable))
        return iterable
    return _ticking(iterable, budget_)


def _ticking(iterable: Any, budget_: Budget) -> Iterator[Any]:
    for item in iterable:
        budget_.tick()
        yield item


#: Collections whose length is the number of items a filter goes through (a string's
#: characters are charged as work, `charge`, by the filters that read them).
_ITERATED = frozenset({list, tuple, dict, range, set, frozenset})


def taken(what: str, iterable: Any, separator: int = 0) -> list[Any]:
    """The items of an iterable whose length nothing knows before (a `map`, a `select`),
    taken one at a time (a tick each) and measured as they come, refused as soon as their
    text with `separator` characters between each two is over `MAX_VALUE`: so
    `range(100000) | map('string') | join('x' * 999999)` stops at its second item instead
    of asking Python for 100 GB (a MemoryError, which said nothing of the template)."""
    budget_ = current()
    items: list[Any] = []
    total = -separator
    for item in iterable:
        total += separator + text_size(item)
        if total > MAX_VALUE:
            raise TemplateLimit(f"{what} would build more than {MAX_VALUE:,} characters, the "
                                "limit (a template builds no value that large)")
        items.append(item)
        if budget_ is not None:
            budget_.tick()
    charge(max(total, 0))
    return items
