from __future__ import annotations

import time
from pathlib import Path

import pytest

from connector.load import MAX_FILE_BYTES, load_file, load_text


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("", "yaml-empty", 1, 1),
        ("   \n\n", "yaml-empty", 1, 1),
        ("a: 1\na: 2\n", "yaml-duplicate-key", 2, 1),
        ("rules:\n  - id: x\n    id: y\n", "yaml-duplicate-key", 3, 5),
        ("a: [1, 2\n", "yaml-syntax", 2, 1),
        ("a: b: c\n", "yaml-syntax", 1, 5),
        ("a\x00b: 1", "yaml-binary", 1, 1),
        ("? [a, b]\n: 1\n", "yaml-complex-key", 1, 3),
    ],
)
def test_bad_yaml_gives_one_positioned_finding(text: str, code: str, line: int, column: int) -> None:
    doc, findings = load_text(text, "f.yaml")
    assert [(f.code, f.line, f.column) for f in findings][:1] == [(code, line, column)]


def test_positions_of_values_and_keys() -> None:
    doc, findings = load_text("rules:\n  - id: a\n    when:\n      status: X\n", "f.yaml")
    assert not findings and doc is not None
    assert doc.position(("rules", 0, "when", "status")) == (4, 15)
    assert doc.position(("rules", 0, "when", "status"), key=True) == (4, 7)
    assert doc.position(("rules", 0, "missing", "deeper")) == (2, 5)


def test_timestamps_stay_strings() -> None:
    doc, _ = load_text("since: 2026-01-01T00:00:00Z\n", "f.yaml")
    assert doc is not None and doc.data == {"since": "2026-01-01T00:00:00Z"}


def test_alias_bomb_is_refused_fast() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    start = time.monotonic()
    doc, findings = load_text(bomb, "bomb.yaml")
    assert doc is None and findings[0].code == "yaml-too-large"
    assert time.monotonic() - start < 5


def test_huge_file_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.write(b"a: " + b"x" * (50 * 1024 * 1024) + b"\n")
    start = time.monotonic()
    doc, findings = load_file(path)
    assert doc is None and findings[0].code == "yaml-too-large"
    assert str(MAX_FILE_BYTES) in findings[0].message
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(("content", "code"), [(b"\x89PNG\r\n\x1a\n\x00\x00", "yaml-binary"), (b"a: \xff\xfe", "yaml-binary")])
def test_binary_files(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    doc, findings = load_file(path)
    assert doc is None and findings[0].code == code


def test_unsafe_tags_are_rejected() -> None:
    doc, findings = load_text("a: !!python/object/apply:os.system ['echo hi']\n", "f.yaml")
    assert [(f.code, f.line, f.column) for f in findings] == [("yaml-tag", 1, 4)]


@pytest.mark.parametrize("value", ["!!float x", "!!int x", "!!int 0x", "!!int ''", "!!bool maybe",
                                   "!!int " + "9" * 5000])
def test_a_tag_that_does_not_fit_its_value_is_a_finding(value: str) -> None:
    """PyYAML's constructors raised ValueError, KeyError or IndexError: exit 3 in validate
    (benchmarks/fuzz_validate.py, seed 7, case 34: `!!float x` in a rule file)."""
    doc, findings = load_text(f"k: v\na: {value}\n", "f.yaml")
    assert [(f.code, f.line, f.column) for f in findings] == [("yaml-tag", 2, 4)]


@pytest.mark.parametrize(
    ("text", "line", "column", "hint"),
    [
        ("source: amazon\nrules:\n\t- id: a\n", 3, 1, "line 3 is indented with a tab"),
        ('source: "amazon\ntarget: vtex\n', 3, 1, "quote opened at line 1, column 9 is never closed"),
        ("rules:\n  - id: a\n   when: {}\n", 3, 4, "indentation: this line is not aligned"),
        ("source: amazon\n  target: vtex\n", 2, 9, "indented deeper than the key above it"),
        ("source: amazon\ntarget vtex\nrules: []\n", 3, 1, "line 2, column 1 is neither 'key: value'"),
        ("rules: [a, b\n", 2, 1, "'[' or '{' opened at line 1, column 8"),
    ],
)
def test_syntax_errors_get_a_hint(text: str, line: int, column: int, hint: str) -> None:
    _, findings = load_text(text, "f.yaml")
    assert [(f.code, f.line, f.column) for f in findings] == [("yaml-syntax", line, column)]
    assert hint in findings[0].hint


@pytest.mark.parametrize("loader", ["CSafeLoader", "SafeLoader"])
def test_same_nodes_and_marks_with_or_without_libyaml(
        loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    import connector.load as load

    if not hasattr(yaml, loader):
        pytest.skip("PyYAML built without libyaml")
    # the same texts plain and quoted
    text = "a: 1\nb:\n  - {c: 'x', d: 2.5}\n  - null\ne: 2026-11-01\nf: [yes, true, 'yes', '1', 1]\n"
    monkeypatch.setattr(load, "_FAST_LOADER", getattr(yaml, loader))
    doc, findings = load.load_text(text, "f.yaml")
    assert findings == [] and doc is not None
    assert doc.data == {"a": 1, "b": [{"c": "x", "d": 2.5}, None], "e": "2026-11-01",
                        "f": [True, True, "yes", "1", 1]}
    assert doc.position(("b", 0, "d")) == (3, 17) and doc.position(("e",), key=True) == (5, 1)
    _, bad = load.load_text("a: [1, 2\n", "f.yaml")
    assert bad[0].message == "YAML syntax error: expected ',' or ']', but got '<stream end>'"


_DEEP_FLOW = "a: " + "[" * 600 + "]" * 600 + "\n"
_DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n"


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "words"),
    [
        ("a: ok\nb: x\x07y\n", "yaml-control-character", 2, 5, "U+0007"),
        ('a: "\x1b[2J"\n', "yaml-control-character", 1, 5, "U+001B"),
        ("# note \x1b\na: 1\n", "yaml-control-character", 1, 8, "U+001B"),
        (_DEEP_FLOW, "yaml-too-deep", 1, 3 + 64, "nesting deeper than 64"),
        (_DEEP_FLOW[:-3] + "\n", "yaml-too-deep", 1, 3 + 64, "nesting deeper than 64"),
        (_DEEP_BLOCK, "yaml-too-deep", 65, 129, "nesting deeper than 64"),
        ("a: &r [*r]\n", "yaml-recursive-alias", 1, 4, "recursive alias"),
        ("a: &r {b: [1, *r]}\n", "yaml-recursive-alias", 1, 4, "recursive alias"),
        ("a: &r {b: 1, <<: *r}\n", "yaml-recursive-alias", 1, 4, "recursive alias"),
        ("x:\n  <<: 1\n  a: 2\n", "yaml-merge-invalid", 2, 7, "'<<' takes a mapping"),
        ("d: &d [1]\nx:\n  <<: [*d]\n", "yaml-merge-invalid", 1, 4, "'<<' takes a mapping"),
    ],
)
def test_hostile_yaml_is_one_positioned_finding(
        text: str, code: str, line: int, column: int, words: str) -> None:
    """Each of these was a traceback (ReaderError, RecursionError, ConstructorError) or a
    finding at 1:1 without the character."""
    doc, findings = load_text(text, "f.yaml")
    assert [(f.code, f.line, f.column) for f in findings][:1] == [(code, line, column)]
    assert words in findings[0].message


@pytest.mark.parametrize("loader", ["CSafeLoader", "SafeLoader"])
def test_deep_yaml_is_refused_with_either_composer(
        loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    import connector.load as load

    if not hasattr(yaml, loader):
        pytest.skip("PyYAML built without libyaml")
    monkeypatch.setattr(load, "_FAST_LOADER", getattr(yaml, loader))
    for depth in (600, 5000):
        _, findings = load.load_text("a: " + "[" * depth + "]" * depth + "\n", "f.yaml")
        assert [(f.code, f.line, f.column) for f in findings] == [("yaml-too-deep", 1, 67)]


def test_nesting_up_to_the_bound_loads() -> None:
    from connector.load.refusals import MAX_DEPTH

    doc, findings = load_text("[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n", "f.yaml")
    assert findings == [] and doc is not None


def test_merge_keys_merge_with_the_positions_of_the_merged_block() -> None:
    text = ("defaults: &d\n  when: {status: CANCELLED}\n  then: [cancel]\n"
            "extra: &e {note: x, then: [other]}\n"
            "rules:\n  - <<: [*d, *e]\n    id: a\n    then: [own]\n")
    doc, findings = load_text(text, "f.yaml")
    assert findings == [] and doc is not None
    assert doc.data["rules"] == [{"when": {"status": "CANCELLED"}, "note": "x",
                                  "then": ["own"], "id": "a"}]
    # merged values point at the anchored block, own values at the rule
    assert doc.position(("rules", 0, "when", "status")) == (2, 18)
    assert doc.position(("rules", 0, "when"), key=True) == (2, 3)
    assert doc.position(("rules", 0, "note")) == (4, 18)
    assert doc.position(("rules", 0, "then", 0)) == (8, 12)
    assert doc.position(("rules", 0, "id")) == (7, 9)


def test_merge_key_does_not_hide_a_duplicate_own_key() -> None:
    _, findings = load_text("d: &d {a: 1}\nx:\n  <<: *d\n  b: 1\n  b: 2\n", "f.yaml")
    assert [(f.code, f.line) for f in findings] == [("yaml-duplicate-key", 5)]
