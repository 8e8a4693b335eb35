"""Loading a newsletter folder: every bad input named by file, line and field."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from newsletter.errors import ContentError, NotFound
from newsletter.folder import field_path, load_folder

ISSUE = Path("content/issues/2026-11-27.yaml")


@pytest.fixture(autouse=True)
def _in_folder(example_dir: Path, monkeypatch):
    monkeypatch.chdir(example_dir)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def errors() -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_folder(".").issue()
    return [str(p) for p in caught.value.problems]


def test_example_loads():
    folder = load_folder(".")
    assert sorted(folder.issues) == [dt.date(2026, 11, 20), dt.date(2026, 11, 27)]
    assert folder.issue().number == 119
    assert folder.newsletter.network("qa-leads").name == "Quality Assurance Leads Network"


def test_unknown_network_names_line_field_and_suggestion():
    edit(ISSUE, "networks: [ad-safeguarding, qa-leads]", "networks: [ad-safeguarding, qa-lead]")
    line = line_of(ISSUE, "qa-lead]")
    assert errors() == [f"{ISSUE}:{line}: items[1].networks[2]: unknown network 'qa-lead' (did you mean 'qa-leads'?)"]


def test_unknown_contact_id():
    edit(ISSUE, "contact: fostering-lead", "contact: nobody")
    assert errors() == [f"{ISSUE}:{line_of(ISSUE, 'contact: nobody')}: meetings[1].contact: unknown contact 'nobody'"]


def test_yaml_syntax_error_has_line():
    edit(ISSUE, "number: 119", "number: [119")
    (message,) = errors()
    assert message.startswith(f"{ISSUE}:") and "YAML syntax" in message


def test_unknown_key():
    edit(ISSUE, "    remind_until: 2026-12-11", "    remind_until: 2026-12-11\n    colour: red")
    assert errors() == [f"{ISSUE}:{line_of(ISSUE, 'colour')}: items[3].colour: unknown key"]


def test_wrong_type():
    edit(ISSUE, "number: 119", "number: one hundred")
    (message,) = errors()
    assert message.startswith(f"{ISSUE}:1: number: ") and "integer" in message


def test_missing_required_field_points_at_its_parent():
    edit(ISSUE, "  - programme: New duties in the Family Support Act\n", "  - \n")
    line = line_of(ISSUE, "The Act received Royal Assent") - 1  # the entry's first key, `update:`
    assert errors() == [f"{ISSUE}:{line}: items[2].programme: required field is missing"]


def test_every_error_in_a_file_is_reported_at_once():
    edit(ISSUE, "contact: fostering-lead", "contact: nobody")
    edit(ISSUE, "url: https://research.example.org/exploitation-study", "url: research.example.org")
    found = errors()
    assert len(found) == 2
    assert any("links[1].url: invalid URL 'research.example.org'" in f for f in found)


def test_file_name_must_agree_with_date():
    edit(ISSUE, "date: 2026-11-27", "date: 2026-11-28")
    assert errors() == [f"{ISSUE}:2: date: date 2026-11-28 disagrees with the file name 2026-11-27.yaml"]


def test_two_issues_with_one_number():
    edit(ISSUE, "number: 119", "number: 118")
    assert errors() == [f"{ISSUE}:1: number: number 118 is also used by 2026-11-20.yaml"]


def test_remind_until_before_issue_date():
    edit(ISSUE, "remind_until: 2026-12-11", "remind_until: 2026-11-26")
    line = line_of(ISSUE, "remind_until: 2026-11-26")
    assert errors() == [f"{ISSUE}:{line}: items[3].remind_until: 2026-11-26 is before the issue date 2026-11-27"]


def test_remind_until_on_issue_date_is_fine():
    edit(ISSUE, "remind_until: 2026-12-11", "remind_until: 2026-11-27")
    load_folder(".")


def test_invalid_url_in_resource():
    edit(ISSUE, "url: https://inspectorate.example.org/send-outcomes-2026", "url: ftp://inspectorate")
    line = line_of(ISSUE, "ftp://")
    assert errors() == [
        f"{ISSUE}:{line}: resources[1].url: invalid URL 'ftp://inspectorate' (expected http:// or https://...)"
    ]


def test_header_fields_refuse_line_breaks():
    edit(
        ISSUE,
        "  - programme: New duties in the Family Support Act",
        '  - programme: "New duties\\r\\nBcc: x@example.org"',
    )
    (message,) = errors()
    assert "items[2].programme: must be one line" in message


def test_errors_in_newsletter_yaml():
    path = Path("newsletter.yaml")
    edit(path, "  email: updates@improvement.example.org", "  email: not-an-address")
    edit(path, 'cron: "0 9 * * fri"', 'cron: "0 9 * * funday"')
    found = errors()
    assert any(f.startswith("newsletter.yaml:4: sender.email:") for f in found)
    assert any(f.startswith("newsletter.yaml:8: schedule.cron: invalid cron") for f in found)


def test_missing_newsletter_yaml(tmp_path: Path):
    with pytest.raises(ContentError, match=r"no newsletter\.yaml here"):
        load_folder(tmp_path)


def test_not_utf8():
    ISSUE.write_bytes("number: 119\ntitle: caf\xe9\n".encode("latin-1"))
    (message,) = errors()
    assert "not UTF-8" in message


def test_bom_is_accepted():
    ISSUE.write_bytes(b"\xef\xbb\xbf" + ISSUE.read_bytes())
    assert load_folder(".").issue().number == 119


def test_missing_issue_date():
    with pytest.raises(NotFound, match="no issue dated 2026-12-04"):
        load_folder(".").issue(dt.date(2026, 12, 4))


def test_paths_outside_cwd_are_shown_in_full(example_dir: Path, tmp_path: Path):
    os.chdir(tmp_path.parent)
    edit(example_dir / ISSUE, "number: 119", "number: x")
    with pytest.raises(ContentError) as caught:
        load_folder(example_dir).issue()
    assert str(caught.value.problems[0]).startswith(str(example_dir.relative_to(Path.cwd()) / ISSUE) + ":1:")


def test_field_path():
    assert field_path(("items", 2, "networks", 0)) == "items[3].networks[1]"
    assert field_path(()) == ""
