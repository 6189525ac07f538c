"""Static analysis of rule files for `validate`: the case space, one rule, rules against rules.

`space` turns conditions into bit sets over the systems' declared domains; `flow` checks one
rule file (values, references, rules that never fire); `coverage` compares rules with one
another (unreachable, conflicting, gaps). A package because the three share one model of
the case space that nothing outside analysis needs.
"""
