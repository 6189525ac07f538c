"""What a template would refuse whatever the order, found by `validate` without rendering it
(`template-limit`): a constant expression over a bound (`'x' * 10**9`), loops inside loops
whose constant lengths multiply past the step budget, a macro calling itself.

Constant parts are evaluated under a render's bounds (`limits`), so finding the
problem costs no more than refusing it.
"""

from __future__ import annotations

from typing import Any

import jinja2

from connector.templates.limits import MAX_DEPTH, MAX_STEPS, MAX_VALUE, TemplateLimit, budget

#: Names a closed expression may read: the environment's own functions.
_GLOBALS = frozenset({"range", "lipsum", "dict", "namespace", "cycler", "joiner"})


def _closed(node: jinja2.nodes.Node) -> bool:
    """Whether `node` reads nothing from the context (only constants and the globals)."""
    return all(n.name in _GLOBALS for n in node.find_all(jinja2.nodes.Name))


def _evaluate(node: jinja2.nodes.Node, env: jinja2.Environment) -> Any:
    import copy

    from jinja2.environment import TemplateExpression

    body = [jinja2.nodes.Assign(jinja2.nodes.Name("result", "store"), copy.deepcopy(node),
                                lineno=1)]
    template = env.from_string(jinja2.nodes.Template(body, lineno=1))
    with budget():
        value = TemplateExpression(template, False)()
        if isinstance(value, range):
            return len(value)
        return len(value) if isinstance(value, (list, tuple, str)) else value


def static_problems(tree: jinja2.nodes.Template, env: jinja2.Environment) -> list[tuple[int, str]]:
    """(line in the template, what) for each bound a render would go over whatever the
    order: a constant expression over a limit, loops in loops whose constant lengths
    multiply past `MAX_STEPS`, a macro that calls itself."""
    found: list[tuple[int, str]] = []
    stack: list[tuple[jinja2.nodes.Node, int]] = [(tree, 1)]
    while stack:
        node, iterations = stack.pop()
        if isinstance(node, jinja2.nodes.Macro):
            calls = [c for c in node.find_all(jinja2.nodes.Call)
                     if isinstance(c.node, jinja2.nodes.Name) and c.node.name == node.name]
            if calls:
                found.append((calls[0].lineno, f"macro {node.name!r} calls itself: calls "
                              f"nest at most {MAX_DEPTH} deep in a render"))
        if isinstance(node, jinja2.nodes.For) and _closed(node.iter):
            try:
                length = _evaluate(node.iter, env)
            except (TemplateLimit, OverflowError) as exc:  # range(10**9): Jinja's own bound
                found.append((node.lineno, str(exc)))
                continue
            except Exception:  # noqa: BLE001: not a bound of ours; rendering reports it
                length = None
            if isinstance(length, int):
                iterations *= max(length, 1)
                if iterations > MAX_STEPS:
                    found.append((node.lineno, f"loops inside loops run {iterations:,} times, "
                                  f"over the limit of {MAX_STEPS:,} per render"))
                    continue
            stack.extend((child, iterations) for child in node.body)
            continue
        if isinstance(node, (jinja2.nodes.BinExpr, jinja2.nodes.Filter, jinja2.nodes.Call,
                             jinja2.nodes.Concat)) and _closed(node):
            try:
                _evaluate(node, env)
            except (TemplateLimit, OverflowError) as exc:
                found.append((node.lineno, str(exc)))
            except MemoryError:  # past every bound we know of: still one, said so
                found.append((node.lineno, "the expression asks for more memory than there "
                              f"is (a value far over {MAX_VALUE:,} characters or items)"))
            except Exception:  # noqa: BLE001,S110: not a bound of ours; rendering reports it
                pass
            continue
        stack.extend((child, iterations) for child in node.iter_child_nodes())
    return sorted(found)
