"""`explain` on random hostile input never ends in a traceback (exit 3) and never prints a
secret: order records mutated from the shipped example (wrong types, deleted keys, nesting
hundreds deep, control characters, lone surrogates) against projects whose VTEX cancel step
carries a hostile template (resource bombs, transformed secrets).

A seeded loop, a few dozen cases: the same cases every run. benchmarks/fuzz_explain.py runs
hundreds, before and after. Before issue 11's fixes this loop ended in tracebacks
(TypeError in normalise.canonical, RecursionError decoding, UnicodeEncodeError printing).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

import hostile
from connector.cli import main
from connector.commands import explain

CASES = 40
SEED = 11
ENV = {"CONNECTOR_VTEX_APP_KEY": hostile.SECRET, "CONNECTOR_VTEX_APP_TOKEN": "tok-" + hostile.SECRET,
       "CONNECTOR_VTEX_ACCOUNT": "shop"}


def test_explain_never_ends_in_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The projects are validated once each, not once per order: the loop is about orders
    # and templates, and validation is what takes the time.
    monkeypatch.setattr(explain, "checked", hostile.cached(explain.checked))
    rng = random.Random(SEED)
    projects = [hostile.project_with(tmp_path / f"project-{n}", hostile.template(rng))
                for n in range(3)]
    projects.append(hostile.project_with(tmp_path / "project-secret",
                                         "{{ settings.app_key | join('-') }}"))
    base = json.loads(hostile.ORDER.read_text())
    codes = []
    for n in range(CASES):
        record = hostile.order(rng, base if rng.random() < 0.6 else hostile.canonical(rng))
        path = hostile.write_order(tmp_path / f"order-{n}.json", record)
        project = projects[n % len(projects)]
        result = CliRunner().invoke(main, ["explain", "--project", str(project), str(path),
                                           "--flow", hostile.FLOW, "--target", str(hostile.TARGET)],
                                    env=ENV)
        shown = f"case {n}: {path.read_text()[:300]}\n{result.output[-2000:]}"
        assert result.exit_code in (0, 2), shown
        assert "Traceback" not in result.output, shown
        assert not any(leak in result.output for leak in hostile.LEAKS), shown
        result.output.encode("utf-8")
        codes.append(result.exit_code)
    assert codes.count(0) >= 5 and codes.count(2) >= 5  # both verdicts and refusals were reached
