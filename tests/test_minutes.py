"""Minutes of network meetings: loading with file:line errors, open actions in later issues, overdue warnings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.assembly import assemble
from newsletter.checks import check
from newsletter.content import Action
from newsletter.errors import ContentError
from newsletter.folder import load_folder
from newsletter.render import render

MINUTES = "content/minutes/2026-11-12-qa-leads.yaml"
HEADING = "Actions from the Quality Assurance Leads Network meeting of 12 November 2026"


def test_the_weekly_lists_the_open_actions_of_the_meeting_before_it(example_dir: Path):
    issue = assemble(load_folder(example_dir))
    [group] = issue.actions
    assert group.minutes.title == "Quality Assurance Leads Network meeting"
    assert [a.owner for a in group.actions] == ["Aoife Brennan", "Priya Natarajan"]  # Morgan Hale's is done
    email = render(issue)
    assert HEADING in email.html
    assert "<strong>Aoife Brennan</strong>" in email.html and "due 18 December 2026" in email.html
    assert HEADING.upper() in email.text
    assert "- Aoife Brennan — Share the Westshire protocol developed as part of the care\n  leavers" in email.text


def test_only_that_networks_readers_see_its_actions(example_dir: Path):
    issue = assemble(load_folder(example_dir))
    assert issue.variant({"qa-leads"}).actions == issue.actions
    send = issue.variant({"send"})
    assert send.actions == () and HEADING not in render(send).html


def test_an_issue_before_or_on_the_meeting_date_lists_nothing(example_dir: Path):
    minutes = example_dir / MINUTES
    minutes.write_text(minutes.read_text().replace("2026-11-12", "2026-11-27"))
    minutes.rename(example_dir / "content/minutes/2026-11-27-qa-leads.yaml")
    assert assemble(load_folder(example_dir)).actions == ()


def test_an_action_past_its_due_date_is_dropped_and_check_warns(example_dir: Path):
    minutes = example_dir / MINUTES
    minutes.write_text(minutes.read_text().replace("due: 2026-12-18", "due: 2026-11-20"))
    folder = load_folder(example_dir)
    assert [a.owner for a in assemble(folder).actions[0].actions] == ["Priya Natarajan"]
    [warning] = [str(w) for w in check(folder) if "minutes" in str(w)]
    assert warning == (
        f"{minutes}:9: actions[1].due: Aoife Brennan's action was due 2026-11-20 and is not marked done: "
        "set `done: true`, or a new `due` date"
    )


def test_open_on():
    action = Action(owner="A", action="B", due=dt.date(2026, 12, 4))
    assert action.open_on(dt.date(2026, 12, 4)) and not action.open_on(dt.date(2026, 12, 5))
    assert not Action(owner="A", action="B", done=True).open_on(dt.date(2000, 1, 1))


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "2026-11-12-qa-leads.yaml",
            "network: qa-lead\ndate: 2026-11-12\ntitle: T\n",
            ":1: network: unknown network 'qa-lead' (did you mean 'qa-leads'?)",
        ),
        (
            "2026-11-12-qa-leads.yaml",
            "network: qa-leads\ndate: 2026-11-12\ntitle: T\nactions:\n  - owner: A\n",
            ":5: actions[1].action: required field is missing",
        ),
        (
            "2026-11-12-fostering.yaml",
            "network: qa-leads\ndate: 2026-11-12\ntitle: T\n",
            ":1: network: network 'qa-leads' disagrees with the file name 2026-11-12-fostering.yaml",
        ),
        (
            "minutes.yaml",
            "network: qa-leads\ndate: 2026-11-12\ntitle: T\n",
            ": file name must be the meeting's date and network, e.g. 2026-11-12-qa-leads.yaml",
        ),
    ],
)
def test_a_broken_minutes_file_is_one_line_with_its_line_and_stops_the_issues_after_it(
    example_dir, name, text, expected
):
    (example_dir / MINUTES).unlink()
    path = example_dir / "content" / "minutes" / name
    path.write_text(text)
    folder = load_folder(example_dir)
    with pytest.raises(ContentError) as caught:
        folder.issue(dt.date(2026, 11, 27))
    assert str(caught.value).startswith(str(path)) and str(caught.value).endswith(expected)


def test_a_broken_minutes_file_dated_after_an_issue_is_only_a_warning_for_it(example_dir: Path):
    path = example_dir / "content" / "minutes" / "2026-12-01-qa-leads.yaml"
    path.write_text("network: qa-leads\ndate: 2026-12-01\n")  # no title: still being written
    folder = load_folder(example_dir)
    assert folder.issue(dt.date(2026, 11, 27)).number == 119
    assert any("(a later draft) required field is missing" in str(w) for w in check(folder))
