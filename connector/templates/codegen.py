"""The bounds' part of compiling a template (`limits` has the rest): `~` and `{% for %}`
routed through the measured functions, and which templates need no budget at all.

Jinja has no sandbox hook for `~` or for loops, so the code generator writes `~` as a call of
the environment's `bounded_concat`, and each loop's iterable goes through the `LOOP_FILTER`
filter (`limits.loop`). A template that only looks values up and outputs them (most of a
request's) runs each node once: it needs no budget, only its output capped.
"""

from __future__ import annotations

from typing import Any

import jinja2
import jinja2.compiler
from jinja2.compiler import CodeGenerator, Frame

from connector.templates.limits import LOOP_FILTER


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with `~` measured (`concat`), which the sandbox has no
    hook for (`counted_loops` does the same for loops)."""

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_Operand(self, node: jinja2.nodes.Operand, frame: Frame) -> None:
        """`in`, `==`, `<`...: the right operand goes through `compared`, which ticks the
        clock by its length, since a comparison goes through it at C speed with no hook of
        its own (thousands of `{{ -1 in big }}`, no loop, ran for minutes)."""
        self.write(f" {jinja2.compiler.operators[node.op]} environment.compared(")
        self.visit(node.expr, frame)
        self.write(")")


def counted_loops(tree: Any) -> Any:
    """`tree` (a template about to be compiled) with each `{% for %}`'s iterable passed
    through `loop`, which counts the iterations (done before code generation, which
    collects the filters a template uses first)."""
    if isinstance(tree, jinja2.nodes.Node):
        for node in tree.find_all(jinja2.nodes.For):
            if not (isinstance(node.iter, jinja2.nodes.Filter) and node.iter.name == LOOP_FILTER):
                node.iter = jinja2.nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None,
                                                lineno=node.iter.lineno)
    return tree


#: Nodes that look up and output: a template of these alone runs each node once, builds
#: nothing but its output (which `bounded_join` caps) and so needs no budget.
_LOOKUP_NODES = (jinja2.nodes.Name, jinja2.nodes.Getattr, jinja2.nodes.Getitem,
                 jinja2.nodes.Const)
#: A comparison is not among them: `x in big` goes through all of `big`, an order's list of
#: any length, and only a budget's clock stops thousands of them.
_UNBOUNDED_NODES = (jinja2.nodes.Template, jinja2.nodes.Output, jinja2.nodes.TemplateData,
                    jinja2.nodes.If, jinja2.nodes.CondExpr, jinja2.nodes.Not, jinja2.nodes.And,
                    jinja2.nodes.Or, *_LOOKUP_NODES)


def unbounded(tree: jinja2.nodes.Node) -> bool:
    """Whether a render of `tree` needs no budget: it has no loop, call, filter, operator,
    comparison, `~`, macro or block, only look-ups, constants, tests of truth and output."""
    return type(tree) in _UNBOUNDED_NODES and all(
        type(node) in _UNBOUNDED_NODES for node in tree.find_all(jinja2.nodes.Node))


def lookup(expression: jinja2.nodes.Node) -> bool:
    """Whether `expression` only reads the context (`order.id`, `order['items']`): its value
    is the caller's own data, already in memory, and needs no budget or measuring."""
    return type(expression) in _LOOKUP_NODES and all(
        type(node) in _LOOKUP_NODES for node in expression.find_all(jinja2.nodes.Node))
