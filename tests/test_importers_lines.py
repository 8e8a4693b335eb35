"""Line cleaning, dates and times, markdown, meetings, resources and contacts: each small input -> fields."""

from __future__ import annotations

import datetime as dt

import pytest

from newsletter.importers.contacts import new_ids, read_contacts
from newsletter.importers.dates import find_date, find_times
from newsletter.importers.lines import clean, heading
from newsletter.importers.markdown import Link, to_markdown
from newsletter.importers.meetings import Named, match_network, read_meeting
from newsletter.importers.resources import read_resource

NETWORKS = [
    Named("lead-members", "Lead Members Group"),
    Named("data-benchmarking", "Data Benchmarking Group"),
    Named("qa-leads", "Quality Assurance Leads Network"),
    Named("fostering", "Fostering Network"),
    Named("send", "SEND Network"),
]
CONTACTS = [Named("programme-manager", "Morgan Hale"), Named("qa-convener", "Aoife Brennan")]
ISSUE = dt.date(2026, 11, 13)


@pytest.mark.parametrize(
    ("raw", "text", "bullet", "body"),
    [
        ("  • Are the priorities right?", "• Are the priorities right?", "-", "Are the priorities right?"),
        ("· some of those", "· some of those", "-", "some of those"),
        ("- a dash", "- a dash", "-", "a dash"),
        ("* a star", "* a star", "-", "a star"),
        ("o a Word sub-bullet", "o a Word sub-bullet", "-", "a Word sub-bullet"),
        ("\t–\tan en dash", "– an en dash", "-", "an en dash"),
        ("1. first", "1. first", "1.", "first"),
        ("2) second", "2) second", "2.", "second"),
        ("a\u00a0non-breaking\u00a0space  ", "a non-breaking space", None, "a non-breaking space"),
        ("zero\u200bwidth", "zerowidth", None, "zerowidth"),
        ("“Curly” quotes’ kept", "“Curly” quotes’ kept", None, "“Curly” quotes’ kept"),
        ("-----", "-----", None, ""),
        ("on its own", "on its own", None, "on its own"),
    ],
)
def test_a_line_is_tidied_and_its_bullet_read(raw: str, text: str, bullet: str | None, body: str) -> None:
    (line,) = clean(raw)
    assert (line.text, line.bullet, line.body) == (text, bullet, body)


def test_every_line_ending_counts_lines_alike() -> None:
    for text in ("a\r\nb\r\n\r\nc", "a\nb\n\nc", "a\rb\r\rc"):
        assert [(line.number, line.text) for line in clean(text)] == [(1, "a"), (2, "b"), (3, ""), (4, "c")]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Programme:", ("programme", "")),
        ("PROGRAMME", ("programme", "")),
        ("Programme: Regional plan", ("programme", "Regional plan")),
        ("ACTION REQUIRED:", ("action required", "")),
        ("**Action required**", ("action required", "")),
        ("Action required – reply by Friday", ("action required", "reply by Friday")),
        ("Actionable items", None),
        ("• Programme:", None),
    ],
)
def test_headings_in_capitals_or_with_colons(text: str, found: tuple[str, str] | None) -> None:
    names = ("programme", "action required", "action")
    assert heading(clean(text)[0], names) == found


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Friday 11 December 2026.", dt.date(2026, 12, 11)),
        ("Tuesday, 12 Jan 2027", dt.date(2027, 1, 12)),
        ("by 24th March", dt.date(2027, 3, 24)),
        ("before the end of April", dt.date(2027, 4, 30)),
        ("13/11/2026", dt.date(2026, 11, 13)),
        ("2026-11-13", dt.date(2026, 11, 13)),
        ("November 20, 2026", dt.date(2026, 11, 20)),
        ("on the 1st of December", dt.date(2026, 12, 1)),
        ("31 February 2027", None),
        ("June TBA", None),
    ],
)
def test_dates_as_offices_write_them(text: str, date: dt.date | None) -> None:
    found = find_date(text, near=ISSUE)
    assert (found.date if found else None) == date


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("2pm – 5pm", ("14:00", "17:00")),
        ("10.30am", ("10:30", None)),
        ("10am-1pm", ("10:00", "13:00")),
        ("14:00–16:30", ("14:00", "16:30")),
        ("10 – 12pm", ("10:00", "12:00")),
        ("2 pm to 4.30 p.m.", ("14:00", "16:30")),
        ("Room 12, 19 authorities", (None, None)),
    ],
)
def test_times(text: str, times: tuple[str | None, str | None]) -> None:
    assert find_times(text) == times


@pytest.mark.parametrize(
    ("label", "network"),
    [
        ("Lead Members Group", "lead-members"),
        ("Data Benchmarking", "data-benchmarking"),
        ("QA Network", "qa-leads"),
        ("Quality Assurance Leads", "qa-leads"),
        ("fostering network", "fostering"),
        ("SEND", "send"),
        ("Adoption Board", None),
        ("Network", None),
    ],
)
def test_a_network_is_matched_by_name_id_or_initials(label: str, network: str | None) -> None:
    assert match_network(label, NETWORKS) == network


@pytest.mark.parametrize(
    ("text", "meeting"),
    [
        (
            "Lead Members Group: Friday 11 December 2026. More information from Morgan Hale (contact details below)",
            {
                "network": "lead-members",
                "title": "Lead Members Group",
                "date": dt.date(2026, 12, 11),
                "contact": "programme-manager",
            },
        ),
        (
            "QA Network: Monday 7 December 2026. 2pm – 5pm. Contact Aoife Brennan for the Teams invitation",
            {
                "network": "qa-leads",
                "title": "QA Network",
                "date": dt.date(2026, 12, 7),
                "start": "14:00",
                "end": "17:00",
                "location": "Online (Teams)",
                "contact": "qa-convener",
            },
        ),
        (
            "Fostering Network: 10.30am 19 January 2027",
            {"network": "fostering", "title": "Fostering Network", "date": dt.date(2027, 1, 19), "start": "10:30"},
        ),
        (
            "SEND Network – 14 January, 10am–12pm at County Hall, Anytown",
            {
                "network": "send",
                "title": "SEND Network",
                "date": dt.date(2027, 1, 14),
                "start": "10:00",
                "end": "12:00",
                "location": "County Hall",
            },
        ),
        ("SEND Network: 1 November 2026", None),  # before the issue: not a meeting to announce
        ("The Lead Members Group agreed the plan", None),
        ("Workforce: Friday 11 December 2026", None),  # no such network
    ],
)
def test_a_meeting_line(text: str, meeting: dict | None) -> None:
    assert read_meeting(text, networks=NETWORKS, contacts=CONTACTS, issue=ISSUE) == meeting


@pytest.mark.parametrize(
    ("text", "resource"),
    [
        (
            "Multi-agency audit tool: children missing education published by Westshire Council on 6 November 2026",
            {
                "title": "Multi-agency audit tool: children missing education",
                "publisher": "Westshire Council",
                "published": dt.date(2026, 11, 6),
            },
        ),
        (
            "Workforce turnover analysis 2026 published by the Regional Improvement Programme on 30 October 2026",
            {
                "title": "Workforce turnover analysis 2026",
                "publisher": "Regional Improvement Programme",
                "published": dt.date(2026, 10, 30),
            },
        ),
        (
            "Practice guide published by Regional Health Partnership 2 November 2026 (https://health.example.org/g)",
            {
                "title": "Practice guide",
                "publisher": "Regional Health Partnership",
                "published": dt.date(2026, 11, 2),
                "url": "https://health.example.org/g",
            },
        ),
        (
            "Early help toolkit – Partnership Office – 4 January 2027 – https://p.example.org/toolkit",
            {
                "title": "Early help toolkit",
                "publisher": "Partnership Office",
                "published": dt.date(2027, 1, 4),
                "url": "https://p.example.org/toolkit",
            },
        ),
        (
            "Audit guide (Westshire Council, 6 November 2026)",
            {"title": "Audit guide", "publisher": "Westshire Council", "published": dt.date(2026, 11, 6)},
        ),
        (
            "Peer review guidance: quality assurance of supervision",
            {"title": "Peer review guidance: quality assurance of supervision"},
        ),
    ],
)
def test_a_resource_line(text: str, resource: dict) -> None:
    assert read_resource(text, near=ISSUE) == resource


@pytest.mark.parametrize(
    ("text", "markdown", "links"),
    [
        ("First line\nsecond line\n\nNew paragraph", "First line\nsecond line\n\nNew paragraph", []),
        ("Intro:\n  • one\n  • two", "Intro:\n\n- one\n- two", []),
        ("1. first\n2) second", "1. first\n2. second", []),
        ("Read the plan (https://x.example.org/plan) today", "[Read the plan](https://x.example.org/plan) today", []),
        ("See the guide <https://x.example.org/g>.", "", [Link("See the guide", "https://x.example.org/g")]),
        ("See <https://x.example.org/g> or call", "[See](https://x.example.org/g) or call", []),
        ("Go to https://x.example.org/a now", "Go to <https://x.example.org/a> now", []),
        (
            "You can read the draft plan here\nhttps://x.example.org/plan.pdf",
            "",
            [Link("You can read the draft plan here", "https://x.example.org/plan.pdf")],
        ),
        ("The audit tool: https://x.example.org/tool", "", [Link("The audit tool", "https://x.example.org/tool")]),
        (
            "Paragraph.\n\nhttps://x.example.org/turnover-2026",
            "Paragraph.",
            [Link("turnover 2026 on x.example.org", "https://x.example.org/turnover-2026")],
        ),
        ("# not a heading", "\\# not a heading", []),
    ],
)
def test_plain_text_as_markdown(text: str, markdown: str, links: list[Link]) -> None:
    assert to_markdown(clean(text)) == (markdown, links)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "Programme Manager: Morgan Hale (Regional Improvement Programme)\nmorgan.hale@improvement.example.org\n"
            "07700 900101",
            (
                "Programme Manager",
                "Morgan Hale",
                "Regional Improvement Programme",
                "morgan.hale@improvement.example.org",
                "07700 900101",
            ),
        ),
        (
            "Jo Bloggs, Programme Lead, South Coast Partnership\nEmail: jo.bloggs@example.org\nTel: 01234 567890",
            ("Programme Lead", "Jo Bloggs", "South Coast Partnership", "jo.bloggs@example.org", "01234 567890"),
        ),
        (
            "Data Lead: Priya Natarajan, priya@example.org, 07700 900102",
            ("Data Lead", "Priya Natarajan", None, "priya@example.org", "07700 900102"),
        ),
    ],
)
def test_contact_details(text: str, fields: tuple) -> None:
    (contact,), unplaced = read_contacts(clean(text))
    assert (contact.role, contact.name, contact.organisation, contact.email, contact.phone) == fields
    assert unplaced == []


def test_a_known_contact_keeps_its_id_and_a_new_one_gets_a_free_slug() -> None:
    found, _ = read_contacts(clean("Programme Manager: Morgan Hale\nProgramme Manager: Sam Lee\nm@x.org"))
    fresh, known = new_ids(found, {"morgan hale": "programme-manager"})
    assert known == {0: "programme-manager"}
    assert fresh == {1: "programme-manager-2"}
