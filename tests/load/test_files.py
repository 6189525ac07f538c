"""connector.load.files and the project's discovery: whatever stands at a path is a finding,
never a traceback, a hang or a read past the size limit."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.validate import findings_for

VALID = Path(__file__).parents[1] / "fixtures" / "valid"
PROJECT = """systems:
  amazon: {mapping: mappings/amazon.yaml}
  vtex: {mapping: MAPPING}
flows:
  amazon-to-vtex: {rules: rules/amazon-to-vtex.yaml}
"""


def _project(tmp_path: Path, mapping: str = "mappings/vtex.yaml") -> Path:
    root = tmp_path / "p"
    shutil.copytree(VALID, root, ignore=shutil.ignore_patterns("alone"))
    (root / "connector.yaml").write_text(PROJECT.replace("MAPPING", mapping))
    return root


def _found(root: Path) -> set[tuple[str, int, int, str]]:
    findings, _ = findings_for(root, [])
    return {(f.file, f.line, f.column, f.code) for f in findings}


def test_the_project_used_here_is_clean(tmp_path: Path) -> None:
    assert _found(_project(tmp_path)) == set()


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: p.symlink_to("/dev/zero"), "file-not-regular"),
        (lambda p: os.mkfifo(p), "file-not-regular"),
        (lambda p: p.mkdir(), "file-not-regular"),
        (lambda p: p.symlink_to(p.name), "file-symlink-loop"),
    ],
    ids=["dev-zero", "fifo", "directory", "symlink-loop"],
)
@pytest.mark.parametrize("which",
                         ["connector.yaml", "mappings/vtex.yaml", "rules/amazon-to-vtex.yaml"])
def test_something_other_than_a_file_is_a_finding(
        tmp_path: Path, make: Callable[[Path], object], code: str, which: str) -> None:
    """/dev/zero was read to a MemoryError, a FIFO waited for a writer for ever, a loop was
    a RuntimeError from Path.resolve, and /dev/null as connector.yaml passed."""
    root = _project(tmp_path)
    (root / which).unlink()
    make(root / which)
    found = _found(root)
    named = {f for f in found if f[3] == code}
    assert named, found
    file, line, _, _ = named.pop()
    if code == "file-symlink-loop" and which != "connector.yaml":
        assert file == "connector.yaml" and line > 0  # at the line naming the path
    else:
        assert file == which


def test_a_path_too_long_for_the_file_system_is_a_finding(tmp_path: Path) -> None:
    """It was an OSError (File name too long) from stat."""
    root = _project(tmp_path, mapping="mappings/" + "v" * 300 + ".yaml")
    assert ("connector.yaml", 3, 19, "file-path-invalid") in _found(root)


def test_loops_and_specials_in_discovered_directories_are_findings(tmp_path: Path) -> None:
    """Without connector.yaml, mappings/ and rules/ are listed: a loop there was a
    RuntimeError; a link to /dev/zero was read without end."""
    root = _project(tmp_path)
    (root / "connector.yaml").unlink()
    (root / "mappings" / "loop.yaml").symlink_to("loop.yaml")
    (root / "rules" / "zero.yaml").symlink_to("/dev/zero")
    found = _found(root)
    assert ("mappings/loop.yaml", 0, 0, "file-symlink-loop") in found
    assert ("rules/zero.yaml", 0, 0, "file-not-regular") in found


def test_a_directory_argument_lists_loops_and_follows_a_link_up_once(tmp_path: Path) -> None:
    from connector.load.files import yaml_files

    (tmp_path / "a.yaml").write_text("x: 1\n")
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    (tmp_path / "up").symlink_to(".")
    assert [p.name for p in yaml_files(tmp_path)] == ["a.yaml", "loop.yaml"]


def test_never_reads_past_the_limit(tmp_path: Path) -> None:
    from connector.load.files import read_bytes

    path = tmp_path / "big.yaml"
    path.write_bytes(b"a" * 101)
    data, findings = read_bytes(path, "big.yaml", 100)
    assert data is None and findings[0].code == "yaml-too-large"
    data, findings = read_bytes(path, "big.yaml", 101)
    assert data == b"a" * 101 and findings == []


def test_a_growing_file_is_read_up_to_the_limit_plus_one(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose size says 0 (procfs) or that grows is bounded by the read, not by stat."""
    from connector.load.files import read_bytes

    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\n")
    reads: list[int] = []
    real_read = os.read

    def endless(fd: int, n: int) -> bytes:
        reads.append(n)
        return b"x" * n if len(reads) < 1000 else real_read(fd, n)

    monkeypatch.setattr(os, "read", endless)
    data, findings = read_bytes(path, "x.yaml", 10)
    assert data is None and findings[0].code == "yaml-too-large"
    assert sum(reads) == 11
