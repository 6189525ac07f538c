"""`connector apply`/`plan --sandbox`: flows the sandbox does not simulate are named as
skipped and the others run; each sandbox run starts from a fresh state file."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from connector.cli import main

REPO = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path, extra_system: bool) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "mappings", root / "mappings")
    shutil.copytree(REPO / "rules", root / "rules")
    config = (REPO / "connector.yaml").read_text()
    if extra_system:
        # a system of the project's own (a copy of VTEX under another name): no simulator
        mapping = (REPO / "mappings" / "vtex.yaml").read_text()
        (root / "mappings" / "shop.yaml").write_text(mapping.replace("system: vtex", "system: shop", 1))
        rules = (REPO / "rules" / "amazon-to-vtex.yaml").read_text()
        rules = rules.replace("target: vtex", "target: shop", 1).replace(" vtex.", " shop.").replace("[vtex.", "[shop.")
        (root / "rules" / "amazon-to-shop.yaml").write_text(rules)
        config = config.replace("systems:\n", "systems:\n  shop:\n    mapping: mappings/shop.yaml\n", 1)
        config = config.replace("flows:\n", "flows:\n  amazon-to-shop:\n    rules: rules/amazon-to-shop.yaml\n", 1)
    (root / "connector.yaml").write_text(config)
    return root


def test_sandbox_runs_the_flows_it_simulates_and_names_the_others(tmp_path: Path) -> None:
    root = _project(tmp_path, extra_system=True)
    result = CliRunner().invoke(main, ["apply", "--sandbox", "--project", str(root),
                                       "--flow", "amazon-to-shop"])
    assert result.exit_code == 2, result.output
    assert "the sandbox simulates none of the flows' systems" in result.output
    result = CliRunner().invoke(main, ["apply", "--sandbox", "--project", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "amazon-to-shop: skipped: the sandbox does not simulate shop" in lines
    assert any(line.startswith("amazon-to-vtex: 21 order(s)") for line in lines), lines


def test_plan_on_the_sandbox_starts_fresh_after_an_apply(tmp_path: Path) -> None:
    root = _project(tmp_path, extra_system=False)
    args = ["--sandbox", "--project", str(root), "--flow", "amazon-to-vtex"]
    assert CliRunner().invoke(main, ["apply", *args]).exit_code == 0
    assert (root / ".connector" / "sandbox.db").exists()
    # a fresh simulator has the same orders to act on: the plan must not read the earlier
    # run's ledger and call them done
    planned = CliRunner().invoke(main, ["plan", *args])
    assert planned.exit_code == 0, planned.output
    assert "cancel_order" in planned.output and "would run" in planned.output
