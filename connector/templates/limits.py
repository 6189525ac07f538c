"""Bounds on one render: no template, whatever it says, takes more than a bounded time and
memory, neither when `validate` compiles it nor when a run renders it.

Jinja's sandbox stops a template from reaching outside it but not from building a large
value: `'x' * 10**9`, `'%*s' % (10**9, 'x')`, `'x' | center(10**9)`, `[0] * 10**8`, loops in
loops over `range`, `lipsum(10**5)`, a macro calling itself. And Jinja evaluates constant
expressions while compiling, so `validate` alone spent seconds and gigabytes on
`"{{ 'x' * 10**9 }}"`. Here:

* the operators that build values (`*`, `**`, `%`, `+`) are intercepted (the sandbox's
  `intercepted_binops`, which Jinja never folds at compile time) and refuse a result over
  `MAX_VALUE` before building it; so do the filters and string methods with a width, a count
  or a replacement (`center`, `indent`, `format`, `replace`, `join`, `batch`, ...);
* anything turned into text (an output, a `~`, a string filter) is measured first, a
  bounded walk, so a list repeated into itself a million times is never printed;
* one render has a budget (`Budget`): loop iterations and calls, characters built, calls
  nested, and a wall-clock deadline, so loops in loops and recursive macros end;
* the output is joined with its length checked (`bounded_join`).

Going through items (loops, the items a filter takes, an iterator joined) is bounded in
`iteration`, string methods in `methods`, both charging the budget here.

The bounds cost an ordinary render little (benchmarks/bench_render.py): a template that only
looks values up and outputs them has no budget (`codegen.unbounded`), a sized loop charges
its length once, the clock is read every `CLOCK_EVERY` steps, and a budget is begun and
ended by two plain calls.

A refusal is a `TemplateLimit`, a sandbox error, which `templates.render` reports with the
template as any other sandbox refusal.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
import threading
import time
from itertools import islice
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2.sandbox import SecurityError

#: Longest value (characters, or items of a list) one operation may build; also the
#: longest output of one template.
MAX_VALUE = 1_000_000
#: Characters and items built or measured in one render, all operations together.
MAX_WORK = 10_000_000
#: Characters and items built by all the renders running at once in one process, together
#: (`Pool`): concurrent orders (RunOptions.concurrency, 8) each built up to `MAX_WORK`, about
#: 120 MB of lists, so apply's peak grew with the concurrency (1 GB at eight).
MAX_PROCESS_WORK = 2 * MAX_WORK
#: Loop iterations and calls in one render.
MAX_STEPS = 200_000
#: Calls (macros, `loop()` of a recursive loop) nested in one render.
MAX_DEPTH = 64
#: Wall-clock time of one render, a last resort behind the counts above.
MAX_SECONDS = 2.0
#: Steps, characters built, and items gone through by filters between two readings of the
#: clock.
CLOCK_EVERY = 1024
WORK_CLOCK_EVERY = 262_144
TICK_EVERY = 65_536
#: Largest integer an operator may build (bits): far past any id, amount or timestamp.
MAX_INT_BITS = 4096
#: The filter `For` loops' iterables are passed through (see `BoundedCodeGenerator`).
LOOP_FILTER = "_bounded_loop"


class TemplateLimit(SecurityError):
    """A template went over one of the bounds of a render."""


class Pool:
    """What the renders running at once in a process may build between them (one `POOL`).

    A render builds its first `WORK_CLOCK_EVERY` characters free of it, so an ordinary render
    never takes the lock; past them it draws from the pool at each reading of the clock
    (`Budget.charge`), and gives back all it drew when it ends (`end`). So a process holds at
    most `MAX_PROCESS_WORK`, and `WORK_CLOCK_EVERY` per render, whatever its concurrency."""

    __slots__ = ("size", "left", "_lock")

    def __init__(self, size: int) -> None:
        self.size = self.left = size
        self._lock = threading.Lock()

    def draw(self, size: int) -> bool:
        with self._lock:
            if size > self.left:
                return False
            self.left -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self.left += size


POOL = Pool(MAX_PROCESS_WORK)


class Budget:
    """What one render has left (not shared between threads: one per render).

    Steps are counted where a render can repeat itself: loop iterations (a sized iterable's
    length at once, when the loop starts), calls and filters; an expression outside them runs
    once per step at most, so it is bounded by the template's size times the steps. The clock
    is read every `CLOCK_EVERY` steps, every `WORK_CLOCK_EVERY` characters built and every
    `TICK_EVERY` items that filters go through (`tick`: `range(100000) | max` is one step),
    so no bounded step runs on long past the deadline."""

    __slots__ = ("steps", "work", "depth", "deadline", "clock_at", "work_at", "ticks", "drawn")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.work = MAX_WORK
        self.depth = 0
        self.deadline = time.monotonic() + MAX_SECONDS
        self.clock_at = MAX_STEPS - CLOCK_EVERY
        self.work_at = MAX_WORK - WORK_CLOCK_EVERY
        self.ticks = TICK_EVERY
        self.drawn = 0

    def step(self, count: int = 1) -> None:
        self.steps -= count
        if self.steps < self.clock_at:
            self._checked()

    def _checked(self) -> None:
        """Past a step count or a clock reading: refuse what is over, else read on."""
        if self.steps < 0:
            raise TemplateLimit(f"more than {MAX_STEPS:,} loop iterations and calls in one "
                                "render (loops inside loops?)")
        self.clock()
        self.clock_at = self.steps - CLOCK_EVERY

    def charge(self, size: int) -> None:
        self.work -= size
        if self.work < self.work_at:
            if self.work < 0:
                raise TemplateLimit(f"more than {MAX_WORK:,} characters built in one render")
            self.clock()
            self.work_at = self.work - WORK_CLOCK_EVERY
            self._draw()

    def _draw(self) -> None:
        """Past the free part, all that is built (up to the next reading) drawn from the
        process's pool: the first `WORK_CLOCK_EVERY` are free, the next reading is that much
        further, so what is drawn is what has been built."""
        need = MAX_WORK - self.work - self.drawn
        if need > 0:
            if not POOL.draw(need):
                raise TemplateLimit(
                    f"the renders running at once in this process built more than "
                    f"{POOL.size:,} characters between them (a template that builds "
                    "this much, rendered for several orders at once?)")
            self.drawn += need

    def tick(self, count: int = 1) -> None:
        """`count` items gone through by a filter: no limit of their own (the steps, the
        work and the values' sizes bound them), only the clock, read every `TICK_EVERY`."""
        self.ticks -= count
        if self.ticks < 0:
            self.clock()
            self.ticks = TICK_EVERY

    def clock(self) -> None:
        """Refuse a render past its deadline (read by every counter above, and by a long
        loop charged at once, `iteration.loop`)."""
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"rendering took longer than {MAX_SECONDS:g} s")

    def enter(self) -> None:
        """One call deeper (a macro, a function, a recursive loop's `loop()`), and a step."""
        self.step()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.depth -= 1
            raise TemplateLimit(f"calls nested deeper than {MAX_DEPTH} (a macro calling itself?)")


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)
#: The budget of the render running in this context, or None (`begin`/`end` set it).
current = _CURRENT.get


def begin() -> contextvars.Token[Budget | None] | None:
    """Start a render's budget (None: an enclosing render's goes on); give it to `end`.

    A pair of calls rather than a context manager: a render is a few microseconds, and
    the generator behind `contextlib.contextmanager` was a fifth of an ordinary one."""
    if _CURRENT.get() is not None:
        return None
    return _CURRENT.set(Budget())


def end(token: contextvars.Token[Budget | None] | None) -> None:
    """End the render `begin` started: what its budget drew from the pool is given back."""
    if token is not None:
        budget_ = _CURRENT.get()
        _CURRENT.reset(token)
        if budget_ is not None and budget_.drawn:
            POOL.give(budget_.drawn)


@contextlib.contextmanager
def budget() -> Iterator[Budget]:
    """The budget of one render (an enclosing render's, when there is one), for `checks`."""
    token = begin()
    try:
        yield _CURRENT.get()  # type: ignore[misc]
    finally:
        end(token)


def step(count: int = 1) -> None:
    budget_ = _CURRENT.get()
    if budget_ is not None:
        budget_.step(count)


def charge(size: int) -> None:
    budget_ = _CURRENT.get()
    if budget_ is not None:
        budget_.charge(size)


def _over(what: str, size: float) -> TemplateLimit:
    return TemplateLimit(f"{what} would build {size:,.0f} characters or items, over the limit "
                         f"of {MAX_VALUE:,} (a template builds no value that large)")


def allow(what: str, size: float) -> None:
    """Refuse building a value of `size` (characters or items); charge it otherwise."""
    if size > MAX_VALUE:
        raise _over(what, size)
    charge(int(size))


def text_size(value: Any, limit: int = MAX_VALUE) -> int:
    """About how long `value` is as text (at least), walked without recursion and given up
    past `limit`; the walk is charged to the render (it is work too).

    Plain dicts, lists and strings are recognised by their exact type first: an order's
    items are measured in a few microseconds."""
    if type(value) is str:
        return len(value)
    total, seen, stack = 0, 0, [value]
    push = stack.append
    while stack and total <= limit:
        item = stack.pop()
        seen += 1
        kind = type(item)
        if kind is dict or kind is not list and kind is not str and isinstance(item, Mapping):
            total += 4 * len(item) + 2
            for part in (*item.keys(), *item.values()):
                if type(part) is str:
                    total += len(part)
                    seen += 1
                else:
                    push(part)
        elif kind is str or isinstance(item, (str, bytes)):
            total += len(item)
        elif kind is list or isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item) + 2  # the separators; a small number's digits are not counted
            if total <= limit:
                stack.extend(i for i in item if not isinstance(i, _SCALARS)
                             or type(i) is int and i.bit_length() > 64)
                seen += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += max(1, item.bit_length() * 3 // 10)
        else:
            total += 8
    charge(seen)
    return total


_SCALARS = (int, float, type(None))


def as_text(what: str, value: Any) -> str:
    """`str(value)`, refused when it would be over `MAX_VALUE` (a number's text is short:
    Python writes no integer of more than 4,300 digits)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float or kind is bool or kind is int and value.bit_length() <= MAX_INT_BITS:
        return str(value)
    allow(what, text_size(value))
    return str(value)


_COLLECTIONS = frozenset({list, tuple, dict, set, frozenset, bytes})


def collected(what: str, value: Any) -> Any:
    """`value`, a list (or other collection) a filter or method has just built from an
    iterable, refused over `MAX_VALUE` and charged as it would print (`text_size`)."""
    if type(value) in _COLLECTIONS:
        allow(what, text_size(value))
    return value


# --- operators -----------------------------------------------------------------------------

INTERCEPTED = frozenset({"*", "**", "%", "+"})
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def check_percent(fmt: str, args: Any) -> None:
    """`fmt % args`: no width or precision from the arguments (`%*s`), none past the limit."""
    for match in _PERCENT.finditer(fmt):
        for spec in match.groups():
            if spec == "*":
                raise TemplateLimit("'%*s' style formatting takes its width from the arguments "
                                    "(write the width in the format)")
            if spec is not None and int(spec) > MAX_VALUE:
                raise _over("a format width", int(spec))
    allow("the formatted text", len(fmt) + text_size(args))


def binop(operator: str, left: Any, right: Any) -> Any:
    """`left operator right` for the intercepted operators, its size checked first."""
    step()
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            size = _length(seq)
            if size is not None and isinstance(count, int):
                allow("repeating a value", size * max(count, 0))
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"a product over {MAX_INT_BITS} bits")
        return left * right
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise TemplateLimit(f"a power over {MAX_INT_BITS} bits ({left} ** {right})")
        return left**right
    if operator == "%":
        if isinstance(left, str):
            check_percent(left, right)
        return left % right
    if operator == "+":
        sizes = _length(left), _length(right)
        if sizes[0] is not None and sizes[1] is not None:
            allow("joining two values", sizes[0] + sizes[1])
        return left + right
    raise TemplateLimit(f"operator {operator!r} is not intercepted")  # pragma: no cover


def concat(parts: Iterable[Any]) -> str:
    """`a ~ b ~ c`, each part measured before it is made text, the sum checked."""
    step()
    texts = [as_text("a '~' concatenation", part) for part in parts]
    allow("a '~' concatenation", sum(map(len, texts)))
    return "".join(texts)


def bounded_join(pieces: Iterable[str]) -> str:
    """A template's output (Jinja's `Environment.concat`), refused past `MAX_VALUE`.

    Taken `_CHUNK` pieces at a time, each chunk measured before the next is asked for: an
    ordinary template is one chunk, joined at C speed, and no output list grows past the
    limit (a loop of empty outputs is bounded by the steps)."""
    iterator = iter(pieces)
    chunk = list(islice(iterator, _CHUNK))
    total = sum(map(len, chunk))
    if len(chunk) < _CHUNK and total <= MAX_VALUE:
        return "".join(chunk)
    out = chunk
    while chunk:
        if total > MAX_VALUE:
            raise TemplateLimit(f"the template renders to more than {MAX_VALUE:,} characters")
        chunk = list(islice(iterator, _CHUNK))
        total += sum(map(len, chunk))
        out += chunk
    return "".join(out)


#: Pieces of output measured at a time (`bounded_join`).
_CHUNK = 256
