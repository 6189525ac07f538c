"""Stage 2c, validate references and templates: every name a file uses must exist.

Unknown systems, actions, arguments, settings and order paths are reported with the nearest
existing name; Jinja templates and JMESPath expressions are parsed and the variables they read
checked against what their context will hold, so a typo fails in CI, not at 3 a.m.
"""

from __future__ import annotations

from connector.diagnostics import Diagnostic
from connector.project import Config
from connector.references.checker import jmespath_findings
from connector.references.mappings import MappingChecker
from connector.references.rules import RuleChecker

__all__ = ["check", "jmespath_findings"]


def check(config: Config) -> list[Diagnostic]:
    """Reference and template findings for every loaded mapping and rule file."""
    mappings, rules = MappingChecker(config), RuleChecker(config)
    for system in config.systems.values():
        doc = config.docs.get(system.where.file)
        if doc is not None:
            mappings.mapping(system, doc[1])
    for flow in config.flows.values():
        doc = config.docs.get(flow.where.file)
        if doc is not None:
            rules.flow(flow, doc[1])
    return mappings.findings + rules.findings
