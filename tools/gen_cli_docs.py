"""Writes docs/cli.md, the command-line reference, from the click commands themselves.

    python tools/gen_cli_docs.py          # rewrite docs/cli.md
    python tools/gen_cli_docs.py --check  # exit 1 if docs/cli.md is out of date (tests do this)

Each command's section is click's own `--help` text at a fixed width, so the reference says
exactly what the installed CLI says: a new command or option shows up by regenerating.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "cli.md"
WIDTH = 100

HEADER = """# Command-line reference

Generated from the click commands by `python tools/gen_cli_docs.py`; do not edit by hand
(a test fails when this file and the CLI disagree). Exit codes everywhere: 0 done, 1 findings
or failed actions, 2 configuration or usage error, 3 a bug (with a traceback).
"""


def _help(command: click.Command, name: str, parent: click.Context | None) -> str:
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=WIDTH,
                        max_content_width=WIDTH, **command.context_settings)
    return command.get_help(ctx)


def render() -> str:
    """The whole reference, in the order `connector --help` lists the commands."""
    from connector.cli import main

    root = click.Context(main, info_name="connector", terminal_width=WIDTH, max_content_width=WIDTH,
                         **main.context_settings)
    parts = [HEADER, "## connector\n", "```text\n" + _help(main, "connector", None) + "\n```\n"]
    for name in main.list_commands(root):
        command = main.get_command(root, name)
        if command is None or command.hidden:
            continue
        summary = command.get_short_help_str(limit=WIDTH)
        parts.append(f"## connector {name}\n\n{summary}\n")
        parts.append("```text\n" + _help(command, name, root) + "\n```\n")
    return "\n".join(parts)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python tools/gen_cli_docs.py",
                  file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
