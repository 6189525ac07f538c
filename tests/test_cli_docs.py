"""docs/cli.md is generated from the click commands and must not drift from them."""

from __future__ import annotations

from tools_module import load_tool


def _tool():  # type: ignore[no-untyped-def]
    return load_tool("gen_cli_docs")


def test_cli_reference_is_up_to_date() -> None:
    tool = _tool()
    assert tool.OUT.read_text(encoding="utf-8") == tool.render(), (
        "docs/cli.md is out of date: run python tools/gen_cli_docs.py")


def test_reference_covers_every_command_and_option() -> None:
    from connector.cli import main

    text = _tool().render()
    for name, command in main.commands.items():
        assert f"## connector {name}\n" in text
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in text, f"{name} {opt}"
