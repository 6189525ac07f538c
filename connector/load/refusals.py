"""Why a YAML text is refused, as one finding in the integrator's terms.

Split from `load` (which builds the data of a text that composes): a text the composer
refuses gets here, where a control character, nesting past `MAX_DEPTH` and a syntax error
are told apart; so does a composed graph too deep to build (a deep file, or an alias inside
its own anchor). Nothing here recurses over the document: it is what a recursion limit hit.
"""

from __future__ import annotations

import re

import yaml

from connector.diagnostics import Diagnostic, error
from connector.load.hints import syntax_hint

#: Bound on nesting (mappings and lists inside each other). The shipped files need 12 levels;
#: every later stage walks the data recursively, so depth is bounded once, at load.
MAX_DEPTH = 64

#: What YAML does not accept in a file (PyYAML's reader's own test): control characters
#: other than tab and line breaks, and the non-characters.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD"
                            "\U00010000-\U0010FFFF]")


def _compose(text: str) -> None:
    loader = yaml.SafeLoader(text)
    try:
        loader.get_single_node()
    finally:
        loader.dispose()


def compose_finding(exc: yaml.YAMLError | RecursionError, text: str, file: str,
                    fast: type[yaml.SafeLoader]) -> Diagnostic:
    """The finding for a text the composer refused: a control character, nesting past
    `MAX_DEPTH` (libyaml stops at 1,000 levels, PyYAML's recursive composer at Python's
    recursion limit), or a syntax error in PyYAML's words (libyaml's differ slightly)."""
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        return _control_finding(bad, text, file)
    deep = _deep_position(text)
    if deep is not None:
        return _too_deep(file, *deep)
    if fast is not yaml.SafeLoader:
        try:
            _compose(text)
        except yaml.YAMLError as pure:
            exc = pure
        except RecursionError:
            pass  # keep libyaml's error: the pure composer recurses once per level
    if isinstance(exc, RecursionError):  # pragma: no cover - _deep_position finds it first
        return _too_deep(file, 1, 1)
    return syntax_finding(exc, text, file)


def _control_finding(bad: re.Match[str], text: str, file: str) -> Diagnostic:
    start = bad.start()
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    char = bad.group()
    more = len(_NON_PRINTABLE.findall(text)) - 1
    others = f" (and {more} more in the file)" if more else ""
    return error(file, line, col, "yaml-control-character",
                 f"control character U+{ord(char):04X} ({char!r}) is not allowed in YAML{others}",
                 "delete it (a paste or an editor put it there); if the value needs it, "
                 f"write it as an escape in a double-quoted string: \"\\x{ord(char):02x}\""
                 if ord(char) < 0x100 else "delete it")


def _deep_position(text: str) -> tuple[int, int] | None:
    """Where (line, column) nesting first goes past `MAX_DEPTH`, read from the event stream
    (which, unlike the composer, does not recurse), or None if it never does (or the text does not parse
    that far: the syntax error is the finding then)."""
    depth = 0
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                mark = event.start_mark
                if depth > MAX_DEPTH and mark is not None:
                    return mark.line + 1, mark.column + 1
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None


def _too_deep(file: str, line: int, col: int) -> Diagnostic:
    return error(file, line, col, "yaml-too-deep",
                 f"nesting deeper than {MAX_DEPTH} levels starts here",
                 "flatten this part: no connector file needs more than a dozen levels "
                 "of mappings and lists inside each other")


def depth_finding(root: yaml.Node, deepest: yaml.Node, file: str) -> Diagnostic:
    """A recursive alias (a node that contains an alias of itself, `a: &r [*r]`), else
    nesting past `MAX_DEPTH`, at the node where it starts."""
    cycle = _cycle(root)
    if cycle is not None:
        mark = cycle.start_mark
        return error(file, mark.line + 1, mark.column + 1, "yaml-recursive-alias",
                     "this anchored node contains an alias of itself (a recursive alias): "
                     "its value would be infinite",
                     "use the alias outside the node its anchor names, or copy the block")
    mark = deepest.start_mark
    return _too_deep(file, mark.line + 1, mark.column + 1)


def _cycle(root: yaml.Node) -> yaml.Node | None:
    """A node reachable from itself in a composed graph, or None (iterative: no recursion,
    each node visited once however many aliases share it)."""
    done: set[int] = set()
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            active.discard(id(node))
            done.add(id(node))
            continue
        if id(node) in done:
            continue
        if id(node) in active:
            return node
        active.add(id(node))
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        for child in children:
            if id(child) in active:
                return child
            if id(child) not in done:
                stack.append((child, False))
    return None


def syntax_finding(exc: yaml.YAMLError, text: str, file: str) -> Diagnostic:
    """A `yaml-syntax` finding positioned on the problem, with a hint in the integrator's terms."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return error(file, 1, 1, "yaml-syntax", f"YAML syntax error: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or str(exc)
    return error(file, line, col, "yaml-syntax", f"YAML syntax error: {problem}",
                 syntax_hint(exc, text))
