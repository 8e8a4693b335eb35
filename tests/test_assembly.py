"""Assembling an issue as of its date: carry-forward rules at their boundaries, and variants."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from newsletter.assembly import assemble
from newsletter.folder import load_folder

D = dt.date


def write_issue(root: Path, date: D, number: int, **extra) -> None:
    body = {"number": number, "date": date, "items": [{"programme": f"Item of {date}", "update": "Text."}], **extra}
    (root / "content" / "issues" / f"{date}.yaml").write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")


@pytest.fixture
def root(example_dir: Path) -> Path:
    for path in (example_dir / "content" / "issues").iterdir():
        path.unlink()
    return example_dir


def test_example_issue(example_dir: Path):
    issue = assemble(load_folder(example_dir))
    assert (issue.number, issue.date) == (119, D(2026, 11, 27))
    assert issue.subject == "Update No 119: exploitation study, Family Support Act duties, SEND inspections"
    assert issue.preheader == "Preventing exploitation outside the home: a two-year study"
    assert [r.item.programme for r in issue.reminders] == [
        "Future dates for network meetings",
        "Workforce turnover analysis",
    ]
    assert [(m.date, m.title) for m in issue.meetings] == [
        (D(2026, 12, 7), "Quality Assurance Leads Network"),
        (D(2026, 12, 11), "Lead Members Group"),
        (D(2027, 1, 12), "Data Benchmarking Group"),
        (D(2027, 1, 19), "Fostering Network"),
    ]
    assert [r.published for r in issue.resources] == [D(2026, 11, 24), D(2026, 11, 18), D(2026, 11, 2)]
    assert len(issue.contacts) == 5


def test_without_a_subject_the_default_names_the_newsletter_number_and_date(root: Path):
    write_issue(root, D(2026, 11, 27), 119)
    assert assemble(load_folder(root)).subject == "Regional Improvement Weekly – Update No 119 – 27 November 2026"


def test_subject_and_preheader_given(root: Path):
    write_issue(root, D(2026, 3, 6), 1, subject="Special edition", preheader="Read this first")
    issue = assemble(load_folder(root))
    assert (issue.subject, issue.preheader) == ("Special edition", "Read this first")


@pytest.mark.parametrize(
    ("issue_date", "reminded"),
    [(D(2026, 1, 9), True), (D(2026, 1, 16), True), (D(2026, 1, 17), False)],
    ids=["before", "on-remind_until", "day-after"],
)
def test_reminder_lasts_through_remind_until(root: Path, issue_date: D, reminded: bool):
    write_issue(root, D(2026, 1, 2), 1, items=[{"programme": "Keep me", "update": "x", "remind_until": D(2026, 1, 16)}])
    write_issue(root, issue_date, 2)
    issue = assemble(load_folder(root), issue_date)
    assert [r.item.programme for r in issue.reminders] == (["Keep me"] if reminded else [])
    if reminded:
        assert (issue.reminders[0].issue_number, issue.reminders[0].issue_date) == (1, D(2026, 1, 2))


def test_item_is_not_its_own_reminder(root: Path):
    write_issue(root, D(2026, 1, 2), 1, items=[{"programme": "New", "update": "x", "remind_until": D(2026, 1, 30)}])
    issue = assemble(load_folder(root))
    assert [i.programme for i in issue.items] == ["New"] and issue.reminders == ()


@pytest.mark.parametrize(
    ("issue_date", "listed"),
    [(D(2026, 2, 10), True), (D(2026, 2, 11), False)],
    ids=["meeting-day", "day-after"],
)
def test_meeting_listed_until_its_day(root: Path, issue_date: D, listed: bool):
    meeting = {"network": "fostering", "title": "Fostering Network", "date": D(2026, 2, 10)}
    write_issue(root, D(2026, 1, 2), 1, meetings=[meeting])
    write_issue(root, issue_date, 2)
    assert bool(assemble(load_folder(root), issue_date).meetings) is listed


def test_meeting_not_listed_before_it_is_announced(root: Path):
    write_issue(root, D(2026, 1, 2), 1)
    write_issue(root, D(2026, 1, 9), 2, meetings=[{"network": "send", "title": "SEND Network", "date": D(2026, 3, 1)}])
    assert assemble(load_folder(root), D(2026, 1, 2)).meetings == ()


def test_meetings_soonest_first_and_reannouncement_not_doubled(root: Path):
    late = {"network": "send", "title": "SEND Network", "date": D(2026, 3, 1), "start": "14:00"}
    early = {"network": "send", "title": "SEND Network", "date": D(2026, 3, 1), "start": "09:30"}
    write_issue(root, D(2026, 1, 2), 1, meetings=[late])
    write_issue(root, D(2026, 1, 9), 2, meetings=[late, early])
    meetings = assemble(load_folder(root)).meetings
    assert [m.start for m in meetings] == ["09:30", "14:00"]


@pytest.mark.parametrize(
    ("weeks_later", "listed"),
    [(0, True), (26, True), (27, False)],
    ids=["announcing-issue", "last-week", "first-week-past"],
)
def test_resources_carried_for_resources_weeks(root: Path, weeks_later: int, listed: bool):
    announced = D(2026, 1, 2)
    write_issue(root, announced, 1, resources=[{"title": "Guide", "publisher": "Us", "url": "https://example.org/g"}])
    date = announced + dt.timedelta(weeks=weeks_later)
    if weeks_later:
        write_issue(root, date, 2)
    assert bool(assemble(load_folder(root), date).resources) is listed


def test_resources_newest_first_undated_last(root: Path):
    resources = [
        {"title": "Undated", "publisher": "Us", "url": "https://example.org/u"},
        {"title": "Old", "publisher": "Us", "published": D(2025, 5, 1), "url": "https://example.org/o"},
        {"title": "New", "publisher": "Us", "published": D(2025, 12, 1), "url": "https://example.org/n"},
    ]
    write_issue(root, D(2026, 1, 2), 1, resources=resources)
    assert [r.title for r in assemble(load_folder(root)).resources] == ["New", "Old", "Undated"]


def test_variant_leaves_out_items_and_reminders_targeted_elsewhere(example_dir: Path):
    issue = assemble(load_folder(example_dir))
    fostering = issue.variant({"fostering"})
    assert [i.programme for i in fostering.items] == ["New duties in the Family Support Act"]
    assert [r.item.programme for r in fostering.reminders] == ["Future dates for network meetings"]
    assert fostering.meetings == issue.meetings and fostering.audience == frozenset({"fostering"})
    qa = issue.variant({"qa-leads", "send"})
    assert [i.programme for i in qa.items] == [i.programme for i in issue.items]
    assert issue.variant(None) is issue


def test_as_json_keeps_format_keys(example_dir: Path):
    data = assemble(load_folder(example_dir)).as_json()
    assert list(data)[:9] == [
        "number",
        "date",
        "subject",
        "preheader",
        "items",
        "reminders",
        "meetings",
        "resources",
        "contacts",
    ]
    assert set(data["items"][0]) == {"programme", "update", "action", "links", "networks", "image"}
    assert data["reminders"][0]["issue_number"] == 118
