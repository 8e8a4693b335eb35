"""Reading a content file: hostile or mistaken YAML is one `file:line: field: message`, fast and bounded."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.errors import ContentError
from newsletter.folder import load_folder
from newsletter.source import MAX_FILE_BYTES, read_yaml

ISSUE = Path("content/issues/2026-11-27.yaml")
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def problems(path: Path, text: str) -> list[str]:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        read_yaml(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &a [*a]\n", "f.yaml:1: an alias refers to itself (a recursive alias)"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "f.yaml: nested deeper than 40 levels"),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "f.yaml:1: nested deeper than 40 levels"),
        ("number: " + "9" * 5000 + "\n", "f.yaml:1: number: a number of 5000 digits: write at most 30"),
        ("a: b\x00c\n", "f.yaml:1: a control character (code 0x00) is in the text: delete it"),
        ("a: 1\nb: 2\na: 3\n", "f.yaml:3: a: 'a' is given twice, on lines 1 and 3: keep one"),
        (
            "items:\n  - update: a tab\tinside\n",
            "f.yaml:2: a tab inside the text (often pasted from Word): replace it with a space",
        ),
        ("a:\n\tb: 1\n", "f.yaml:2: a tab is used to indent: indent with spaces"),
        (
            "items:\n  - programme: Foo: bar\n",
            'f.yaml:2: a colon inside text needs quotes: put the whole text in "double quotes"',
        ),
        ('a: "unclosed\nb: c\nd: e\n', "f.yaml:1: a quote opened here is never closed"),
        ("a:\n  b: 1\n c: 2\n", "f.yaml:3: the indentation is off: line this key up with the others, using spaces"),
        (
            "a: !!python/object:os.system x\n",
            "f.yaml:1: a: the tag tag:yaml.org,2002:python/object:os.system is not allowed here",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_where(tmp_path: Path, monkeypatch, text: str, expected: str):
    monkeypatch.chdir(tmp_path)
    assert problems(tmp_path / "f.yaml", text) == [expected]


def test_a_billion_laughs_is_refused_within_a_second_and_small_memory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(LAUGHS) < 400
    started = time.perf_counter()
    found = problems(tmp_path / "f.yaml", LAUGHS)
    assert time.perf_counter() - started < 1.0
    assert len(found) == 1 and "aliases expand this to more than 20,000 values" in found[0]


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = problems(tmp_path / "f.yaml", "a: " + "x" * (MAX_FILE_BYTES + 10) + "\n")
    assert found == ["f.yaml: the file is 1.0 MB; a content file may be at most 1024 KB"]


def test_small_aliases_still_work(tmp_path: Path):
    path = tmp_path / "f.yaml"
    path.write_text("a: &n [qa-leads, fostering]\nb: *n\n", encoding="utf-8")
    data, source = read_yaml(path)
    assert data == {"a": ["qa-leads", "fostering"], "b": ["qa-leads", "fostering"]}
    assert source.lines[("b",)] == 2


def test_yaml_1_2_values(tmp_path: Path):
    path = tmp_path / "f.yaml"
    path.write_text("a: yes\nb: true\nc: 12\nd: 1.5\ne: ~\nf: 2026-11-27\ng: '12'\nh: 0o17\n", encoding="utf-8")
    data, _ = read_yaml(path)
    assert data == {"a": "yes", "b": True, "c": 12, "d": 1.5, "e": None, "f": "2026-11-27", "g": "12", "h": 15}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("date: 2026-11-27", "date: 2026-02-30", "date", "Input should be a valid date"),
        ("number: 119", "number: 119\nnumber: 120", "number", "'number' is given twice"),
    ],
)
def test_impossible_values_in_an_issue_name_their_field(example_dir: Path, monkeypatch, old, new, field, message):
    monkeypatch.chdir(example_dir)
    edit(ISSUE, old, new)
    with pytest.raises(ContentError) as caught:
        load_folder(".").issue()
    found = [str(p) for p in caught.value.problems]
    assert any(f.startswith(f"{ISSUE}:") and f": {field}: " in f and message in f for f in found), found


def test_an_impossible_remind_until_is_a_field_error(example_dir: Path, monkeypatch):
    monkeypatch.chdir(example_dir)
    text = ISSUE.read_text(encoding="utf-8")
    ISSUE.write_text(
        text.replace("  - programme:", "  - remind_until: 2027-13-08\n    programme:", 1), encoding="utf-8"
    )
    with pytest.raises(ContentError) as caught:
        load_folder(".").issue()
    found = [str(p) for p in caught.value.problems]
    assert any("items[1].remind_until: Input should be a valid date" in f for f in found), found


def test_empty_networks_reach_nobody_and_are_refused(example_dir: Path, monkeypatch):
    monkeypatch.chdir(example_dir)
    edit(ISSUE, "networks: [ad-safeguarding, qa-leads]", "networks: []")
    with pytest.raises(ContentError) as caught:
        load_folder(".").issue()
    assert [str(p) for p in caught.value.problems] == [
        f"{ISSUE}:{_line(ISSUE, 'networks: []')}: items[1].networks: an empty list reaches nobody: "
        "name the networks, or leave the key out to reach every network"
    ]


def test_a_huge_text_block_is_refused_with_the_limit(example_dir: Path, monkeypatch):
    monkeypatch.chdir(example_dir)
    edit(ISSUE, "intro: ", "intro: " + "word " * 5000 + "")
    with pytest.raises(ContentError) as caught:
        load_folder(".").issue()
    (found,) = [str(p) for p in caught.value.problems]
    assert found.startswith(f"{ISSUE}:") and "intro: String should have at most 20000 characters" in found
    assert len(found) < 200


def test_meetings_before_their_issue_or_ending_before_they_start(example_dir: Path, monkeypatch):
    monkeypatch.chdir(example_dir)
    text = ISSUE.read_text(encoding="utf-8")
    meetings = text.index("meetings:")
    body = text[meetings:]
    body = body.replace("date: ", "date: 2026-11-01 #", 1)
    ISSUE.write_text(text[:meetings] + body, encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_folder(".").issue()
    assert any(
        "meetings[1].date: 2026-11-01 is before the issue that announces it (2026-11-27)" in str(p)
        for p in caught.value.problems
    )


def test_a_broken_later_draft_is_a_warning_for_this_weeks_issue(example_dir: Path):
    draft = example_dir / "content" / "issues" / "2026-12-04.yaml"
    draft.write_text("number: 120\ndate: 2026-12-04\nitems:\n  - programme: Half: written\n", encoding="utf-8")
    folder = load_folder(example_dir)
    issue = folder.issue(dt.date(2026, 11, 27))  # does not raise
    assert issue.number == 119
    errors, warnings = folder.problems(dt.date(2026, 11, 27))
    assert errors == [] and len(warnings) == 1 and warnings[0].severity == "warning"
    with pytest.raises(ContentError):
        folder.issue(dt.date(2026, 12, 4))
    with pytest.raises(ContentError):
        folder.issue()  # the newest file is the draft


def test_a_broken_earlier_file_stops_the_issues_that_draw_on_it(example_dir: Path):
    edit(example_dir / "content" / "issues" / "2026-11-20.yaml", "number: 118", "number: x")
    with pytest.raises(ContentError):
        load_folder(example_dir).issue(dt.date(2026, 11, 27))


def test_check_on_a_billion_laughs_stays_small(example_dir: Path):
    """The whole command, as an editor runs it: one line, exit 1, well under a second and 200 MB."""
    (example_dir / "content" / "issues" / "2026-11-27.yaml").write_text(LAUGHS, encoding="utf-8")
    code = (
        "import re, sys; from newsletter.cli import main; rc = main(['check', '--dir', sys.argv[1]]); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "  # ru_maxrss is inherited
        "print(hwm, file=sys.stderr); sys.exit(rc)"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(example_dir)], capture_output=True, text=True, timeout=60)
    lines = done.stderr.splitlines()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "aliases expand this" in lines[0]
    assert int(lines[-1]) < 200 * 1024  # KB: the command's own peak, not the test runner's
    assert time.perf_counter() - started < 10  # the interpreter's start-up included


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)
