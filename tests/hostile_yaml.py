"""Randomly broken copies of the shipped project for `validate`: the shipped files with lines
deleted, duplicated or re-indented, scalars replaced by another type, tags, anchors and
merge keys, deep nesting, control characters, and files replaced by special ones.

Used by tests/test_validate_fuzz.py (a few dozen cases, fixed seed). Everything is drawn from one
`random.Random`, so a seed names a run.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["connector.yaml", *(f"mappings/{p.name}" for p in sorted((ROOT / "mappings").glob("*.yaml"))),
           *(f"rules/{p.name}" for p in sorted((ROOT / "rules").glob("*.yaml")))]

SCALARS = ["42", "-1", "1.5e308", "true", "null", "~", "''", "[]", "{}", "[1, [2]]",
           "{a: {b: c}}", "2026-13-45", "0x1F", ".inf", "'{{ settings }}'", '"\\x1b[2J"',
           "'{{'", "|\n  block", "[*nothing]", "!!str 1", "&x {}", "<<: 1"]
TAGS = ["!!python/object/apply:os.system ['id']", "!!binary aGk=", "!!set {a: null}",
        "!!omap [{a: 1}]", "!custom x", "!!timestamp 2026-01-01", "!!int '7'", "!!float x"]
CONTROLS = ["\x07", "\x1b", "\x1b[31m", "\x00", "\x7f", "\x85", "\ufeff", "\u2028", "\x08",
            "\r", "\t", "\x0c", "\ufffe"]

_KEY_VALUE = re.compile(r"^(\s*(?:- )?[\w.-]+: )(.+)$")


def _deep(rng: random.Random) -> str:
    depth = rng.choice([40, 63, 64, 65, 100, 300, 999, 1001, 5000])
    kind = rng.random()
    if kind < 0.4:
        return "[" * depth + "]" * depth
    if kind < 0.7:
        return "{a: " * depth + "b" + "}" * depth
    if kind < 0.85:  # a deep JMESPath or template in a string
        return "'" + "(" * depth + "a" + ")" * depth + "'"
    return "'" + "{{ " + "[" * depth + "1" + "]" * depth + " }}" + "'"


def _block_nest(rng: random.Random, indent: str) -> list[str]:
    depth = rng.choice([63, 65, 200, 400])
    return [indent + "  " * i + f"k{i}:" for i in range(depth)] + [indent + "  " * depth + "v"]


def mutate_text(rng: random.Random, text: str) -> str:
    """The text with one to three random mutations."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        if not lines:
            lines = [""]
        i = rng.randrange(len(lines))
        line = lines[i]
        match = _KEY_VALUE.match(line)
        choice = rng.random()
        if choice < 0.12:
            del lines[i]
        elif choice < 0.22:
            lines.insert(i, line)
        elif choice < 0.32:
            lines[i] = rng.choice([" ", "  ", "\t", " " * 7]) + line if rng.random() < 0.5 \
                else line[rng.randint(1, 4):] if line.startswith("  ") else " " + line
        elif choice < 0.47 and match:
            lines[i] = match.group(1) + rng.choice(SCALARS)
        elif choice < 0.55 and match:
            lines[i] = match.group(1) + rng.choice(TAGS)
        elif choice < 0.65 and match:  # anchors, aliases, merge keys (some recursive)
            name = rng.choice(["a", "b"])
            lines[i] = match.group(1) + f"&{name} " + match.group(2)
            j = rng.randrange(len(lines))
            other = _KEY_VALUE.match(lines[j])
            if other:
                lines[j] = other.group(1) + rng.choice([f"*{name}", f"[*{name}]", f"{{<<: *{name}}}",
                                                        f"{{<<: [*{name}, *{name}]}}", "*missing"])
            if rng.random() < 0.3:
                lines[i] = match.group(1) + f"&{name} [*{name}]"
        elif choice < 0.75 and match:
            lines[i] = match.group(1) + _deep(rng)
        elif choice < 0.8 and match:
            indent = " " * (len(line) - len(line.lstrip()))
            lines[i : i + 1] = [match.group(1).rstrip()] + _block_nest(rng, indent + "  ")
        elif choice < 0.92:
            at = rng.randint(0, len(line))
            lines[i] = line[:at] + rng.choice(CONTROLS) + line[at:]
        elif choice < 0.96:
            lines = lines[: rng.randint(0, len(lines))]  # truncated
        else:
            lines.insert(i, rng.choice(["---", "...", "%YAML 1.1", "? [a]", ": x", "- - -", "{"]))
    return "\n".join(lines)


def _special(rng: random.Random, path: Path) -> None:
    path.unlink()
    kind = rng.choice(["fifo", "zero", "null", "loop", "dir", "dangling"])
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "null":
        path.symlink_to("/dev/null")
    elif kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dir":
        path.mkdir()
    else:
        path.symlink_to("nowhere.yaml")


def broken_project(rng: random.Random, directory: Path) -> tuple[Path, str]:
    """A copy of the shipped project under `directory` with one file broken, and a line
    saying what was done (for a failure message)."""
    project = directory / "project"
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    shutil.copy(ROOT / "connector.yaml", project)
    shutil.copytree(ROOT / "mappings", project / "mappings")
    shutil.copytree(ROOT / "rules", project / "rules")
    name = rng.choice(SHIPPED)
    path = project / name
    if rng.random() < 0.08:
        _special(rng, path)
        return project, f"{name}: replaced by a special file"
    text = mutate_text(rng, path.read_text(encoding="utf-8"))
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return project, f"{name}: {len(text)} characters"


def cases(seed: int, count: int, directory: Path,
          run: Callable[[Path], tuple[int, str]]) -> list[tuple[str, int, str]]:
    """`count` broken projects from `seed`, each given to `run` (project -> exit code and
    output): (what was broken, exit code, output) for each."""
    rng = random.Random(seed)
    results = []
    for _ in range(count):
        project, what = broken_project(rng, directory)
        code, output = run(project)
        results.append((what, code, output))
    return results
