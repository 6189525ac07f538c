"""`connector init`: a new project from a shipped flow is clean under --strict, its test cases
and its recorded sandbox run pass, and init never overwrites what is there."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.commands.validate import findings_for

ROOT = Path(__file__).parent.parent
SHIPPED_FLOWS = sorted(yaml.safe_load((ROOT / "connector.yaml").read_text())["flows"])


@pytest.mark.parametrize("flow", SHIPPED_FLOWS)
def test_init_gives_a_working_project(tmp_path: Path, flow: str) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path), "--from", flow])
    assert result.exit_code == 0, result.output
    findings, files = findings_for(tmp_path, [])
    assert findings == [] and files == 4
    strict = CliRunner().invoke(main, ["validate", "--strict", "--project", str(tmp_path)])
    assert strict.exit_code == 0, strict.output
    assert "0 error(s), 0 warning(s) in 4 file(s)" in strict.output
    project = yaml.safe_load((tmp_path / "connector.yaml").read_text())
    assert list(project["flows"]) == [flow]
    rules = yaml.safe_load((tmp_path / project["flows"][flow]["rules"]).read_text())
    systems = {rules["source"], rules["target"]}  # walmart-to-vtex: the Walmart mapping too
    assert set(project["systems"]) == systems
    assert {p.name for p in (tmp_path / "mappings").iterdir()} == {f"{s}.yaml" for s in systems}
    tested = CliRunner().invoke(main, ["test", "--project", str(tmp_path)])
    assert tested.exit_code == 0 and " 0 failed" in tested.output, tested.output
    cassette = tmp_path / "cassettes" / f"sandbox-{flow}.yaml"
    if (ROOT / "cassettes" / cassette.name).is_file():
        replay = CliRunner().invoke(main, ["test", "--project", str(tmp_path), "--cassette",
                                           str(cassette)])
        assert replay.exit_code == 0, replay.output
        assert f"connector test --cassette cassettes/{cassette.name}" in result.output


def test_every_yaml_file_points_at_its_schema(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["init", str(tmp_path)])
    first_lines = {str(p.relative_to(tmp_path)): p.read_text().splitlines()[0]
                   for p in tmp_path.rglob("*.yaml") if p.parent.name != "cassettes"}
    assert first_lines == {
        "connector.yaml": "# yaml-language-server: $schema=.connector/schemas/project.schema.json",
        "rules/amazon-to-vtex.yaml":
            "# yaml-language-server: $schema=../.connector/schemas/rules.schema.json",
        "mappings/amazon.yaml":
            "# yaml-language-server: $schema=../.connector/schemas/mapping.schema.json",
        "mappings/vtex.yaml":
            "# yaml-language-server: $schema=../.connector/schemas/mapping.schema.json",
    }
    for kind in ("project", "rules", "mapping"):
        assert (tmp_path / ".connector" / "schemas" / f"{kind}.schema.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--from", "amazon-to-vtx"], "no shipped flow 'amazon-to-vtx' (did you mean 'amazon-to-vtex'?)"),
     (["--from", "walmart-to-vtx"], "(did you mean 'walmart-to-vtex'?); shipped: "
                                    + ", ".join(SHIPPED_FLOWS)),
     ([], "would overwrite mappings/vtex.yaml (use --force)")],
)
def test_init_refuses_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "vtex.yaml").write_text("# mine\n")
    result = CliRunner().invoke(main, ["init", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["vtex.yaml"]
    assert (tmp_path / "mappings" / "vtex.yaml").read_text() == "# mine\n"


def test_init_force_overwrites(tmp_path: Path) -> None:
    (tmp_path / "connector.yaml").write_text("# mine\n")
    result = CliRunner().invoke(main, ["init", str(tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert findings_for(tmp_path, [])[0] == []
