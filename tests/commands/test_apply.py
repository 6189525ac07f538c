"""`connector plan` and `connector apply`: what they refuse, say and print."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from connector.cli import main
from connector.commands import apply
from connector.sandbox import Sandbox

from conftest import call, sandbox_env

FLOW = "amazon-to-vtex"


def test_plan_and_apply_refuse_a_configuration_with_validate_errors(project: Path) -> None:
    rules = project / "rules" / f"{FLOW}.yaml"
    text = rules.read_text()
    assert "      - vtex.release_reservation\n" in text
    # A reference error: the files load, only validate's checks see it.
    rules.write_text(text.replace("      - vtex.release_reservation\n",
                                  "      - vtex.release_reservatio\n", 1))
    for command in ("plan", "apply"):
        result = CliRunner().invoke(main, [command, "--project", str(project), "--flow", FLOW])
        assert result.exit_code == 2, result.output
        finding = re.search(r"^rules/amazon-to-vtex\.yaml:\d+:\d+: error: .* \[[a-z-]+\]$",
                            result.stderr, re.MULTILINE)
        assert finding, result.stderr


def test_plan_says_what_failed_instead_of_nothing_to_do(sandbox: Sandbox, tmp_path: Path,
                                                        project: Path) -> None:
    sandbox.faults.fail_next("vtex", "GET", "orders", 400, count=None)
    ran = call(apply.run, project, FLOW, None, None, False, True, "text", None,
               environ=sandbox_env(sandbox, tmp_path / "state.db"))
    assert ran.code == 1
    failed = [line for line in ran.out.splitlines() if " failed: " in line]
    assert failed and all("vtex answered 400" in line for line in failed), ran.out
    assert "nothing to do" not in ran.out
    assert f"{len(failed)} order(s) or action(s) could not be planned" in ran.err


def test_plan_sandbox_does_not_reuse_an_earlier_sandbox_state(project: Path) -> None:
    """An apply --sandbox leaves .connector/sandbox.db behind; a plan --sandbox after it
    sees a fresh simulator, so it must plan as on a fresh state too (not "already done")."""
    first = call(apply.run, project, FLOW, None, None, True, True, "json", None, environ={})
    assert call(apply.run, project, FLOW, None, None, True, False, "text", None,
                environ={}).code == 0
    assert (project / ".connector" / "sandbox.db").exists()
    again = call(apply.run, project, FLOW, None, None, True, True, "json", None, environ={})
    def planned(out: str) -> list[tuple[str, str, bool]]:
        return sorted((row["order"], row["action"], row["runs"]) for row in json.loads(out))

    assert planned(again.out) == planned(first.out)
    assert any(runs for _order, _action, runs in planned(again.out))
