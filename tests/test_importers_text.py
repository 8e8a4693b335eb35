"""A plain-text weekly update read as an issue file: its blocks, and nothing in it lost."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from newsletter.folder import load_newsletter
from newsletter.importers.lines import plain
from newsletter.importers.meetings import Named
from newsletter.importers.text import Imported, import_text

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
EXAMPLES = Path(__file__).parent.parent / "examples"
NETWORKS = [Named("lead-members", "Lead Members Group"), Named("qa-leads", "Quality Assurance Leads Network"),
            Named("send", "SEND Network"), Named("fostering", "Fostering Network")]  # fmt: skip

# another office's layout: CRLF, non-breaking spaces, tabs, trailing spaces, curly quotes, every kind of bullet
OTHER_OFFICE = (
    "South Coast Partnership — Weekly Bulletin\r\n"
    "Issue 42\r\n"
    "Friday, 8 January 2027\r\n"
    "\r\n"
    "PROGRAMME: Early help audit   \r\n"
    "UPDATE:\r\n"
    "The partnership’s audit of early\u00a0help found that:\r\n"
    "\t• referrals rose by 12%\r\n"
    "\t· waiting times fell\r\n"
    "o two pilots closed\r\n"
    "* one new hub opened\r\n"
    "- staff turnover held\r\n"
    "1. first finding\r\n"
    "2) second finding\r\n"
    "Read more on the audit page (https://partnership.example.org/audit)\r\n"
    "SEND Network – 14 January, 10am–12pm at County Hall, Anytown\r\n"
    "ACTION REQUIRED:\r\n"
    "Reply to “Jo Bloggs” by 22 January 2027.\r\n"
    "The reply form <https://partnership.example.org/form>\r\n"
    "\r\n"
    "REMINDERS:\r\n"
    "Programme: SEND survey\r\n"
    "Update: The survey closes on 29 January 2027.\r\n"
    "Action Required: Complete it at https://survey.example.org/send\r\n"
    "\r\n"
    "TOOLS AND TEMPLATES:\r\n"
    "- Early help toolkit – Partnership Office – 4 January 2027 – https://partnership.example.org/toolkit\r\n"
    "- Something odd here\r\n"
    "\r\n"
    "CONTACTS:\r\n"
    "Jo Bloggs, Programme Lead, South Coast Partnership\r\n"
    "Email: jo.bloggs@partnership.example.org\r\n"
    "Tel: 01234 567890\r\n"
)


def run(text: str, **options) -> Imported:
    return import_text(text, source="in.txt", networks=NETWORKS, contacts=[], existing={}, **options)


def load(imported: Imported) -> dict:
    return YAML(typ="safe").load(imported.yaml)


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", plain(text)) if len(w) > 1}


def assert_nothing_lost(text: str, imported: Imported) -> None:
    """Every non-blank input line's words are in the output file, as content or as a comment."""
    kept = words(imported.yaml)
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        missing = words(line) - kept
        assert not missing, f"line {number} lost {sorted(missing)}: {line!r}"


@pytest.mark.parametrize(
    ("text", "number", "date"),
    [
        ("UPDATE NO 117 13 November 2026\n\nProgramme: A\nUpdate: B", 117, dt.date(2026, 11, 13)),
        ("Update No. 5\nFriday 4 December 2026\nProgramme: A\nUpdate: B", 5, dt.date(2026, 12, 4)),
        ("Weekly bulletin issue 12 – 13/11/2026\n\nProgramme: A\nUpdate: B", 12, dt.date(2026, 11, 13)),
    ],
)
def test_the_number_and_date_from_the_header(text: str, number: int, date: dt.date) -> None:
    document = load(run(text, number=999, date=dt.date(2000, 1, 1)))
    assert (document["number"], document["date"]) == (number, date)


def test_the_options_give_what_the_text_does_not() -> None:
    document = load(run("Programme: A\nUpdate: B", number=3, date=dt.date(2026, 1, 9)))
    assert (document["number"], document["date"]) == (3, dt.date(2026, 1, 9))


def test_one_line_asks_for_what_neither_gives() -> None:
    with pytest.raises(
        ValueError, match=r"^the text gives no issue date or number: give --date YYYY-MM-DD and --number N$"
    ):
        run("Programme: A\nUpdate: B")


@pytest.mark.parametrize(
    ("text", "item"),
    [
        (
            "Programme:\n\nA title\n\nUpdate:\n\nOne.\n\nTwo.\n\nAction Required:\n\nDo it.",
            {"programme": "A title", "update": "One.\n\nTwo.\n", "action": "Do it.\n"},
        ),
        (
            "PROGRAMME: A title\nUPDATE: One.\nACTION REQUIRED: Do it.",
            {"programme": "A title", "update": "One.\n", "action": "Do it.\n"},
        ),
        (
            "Programme: A title\n\nNo Update heading here.",
            {"programme": "A title", "update": "No Update heading here.\n"},
        ),
        (
            "Programme: A title\nUpdate:\nSee the report (https://x.example.org/r)\nhttps://x.example.org/more",
            {
                "programme": "A title",
                "update": "See the report\n",
                "links": [{"text": "See the report", "url": "https://x.example.org/r"}],
            },
        ),
    ],
)
def test_a_block_is_an_item(text: str, item: dict) -> None:
    (found,) = load(run(text, number=1, date=dt.date(2026, 1, 9)))["items"]
    if "links" in item:
        assert found["links"][0] == item["links"][0]
        return
    assert found == item


def test_a_reminder_gets_remind_until_from_its_text_or_two_weeks() -> None:
    text = (
        "Programme: New\nUpdate: a\n\nReminders from previous weeks\n\nProgramme: Old\nUpdate: b\n\n"
        "Programme: Survey\nUpdate: It closes on 29 January 2026.\nAction Required: Reply by 20 January 2026."
    )
    imported = run(text, number=1, date=dt.date(2026, 1, 9))
    items = load(imported)["items"]
    assert [i.get("remind_until") for i in items] == [None, dt.date(2026, 1, 23), dt.date(2026, 1, 29)]
    assert "remind_until: 2026-01-23  # the text gives no date: the issue date + 14 days" in imported.yaml
    assert "# Reminders from previous weeks (line 4)" in imported.yaml


def test_meeting_lines_become_meetings_and_an_emptied_item_a_comment() -> None:
    text = "Programme: Future dates\nUpdate:\nQA Network: Monday 7 December 2026. 2pm – 5pm\nProgramme: Next\nUpdate: x"
    imported = run(text, number=1, date=dt.date(2026, 11, 13))
    document = load(imported)
    assert document["meetings"] == [
        {"network": "qa-leads", "title": "QA Network", "date": dt.date(2026, 12, 7), "start": "14:00", "end": "17:00"}
    ]
    assert [i["programme"] for i in document["items"]] == ["Next"]
    assert "# line 1: Future dates (Programme:)  (its lines became the meetings)" in imported.yaml


def test_a_resource_without_a_url_is_a_comment_to_finish() -> None:
    text = "Programme: A\nUpdate: B\nTools & Templates\nGuide published by Kent on 2 March 2026\n"
    text += "Toolkit published by Surrey on 3 March 2026 https://surrey.example.org/toolkit"
    imported = run(text, number=1, date=dt.date(2026, 3, 6))
    assert load(imported)["resources"] == [
        {
            "title": "Toolkit",
            "publisher": "Surrey",
            "published": dt.date(2026, 3, 2 + 1),
            "url": "https://surrey.example.org/toolkit",
        }
    ]
    assert "#   - title: Guide\n#     publisher: Kent\n#     published: 2026-03-02\n" in imported.yaml
    assert [n.line for n in imported.notes] == [4]


def test_the_sample_weekly() -> None:
    text = (SEEDS / "legacy-weekly.txt").read_text(encoding="utf-8")
    newsletter, _ = load_newsletter(EXAMPLES)
    networks = [Named(n.id, n.name) for n in newsletter.networks]
    imported = import_text(text, source="legacy-weekly.txt", networks=networks, contacts=[], existing={})
    document = load(imported)
    assert (document["number"], document["date"]) == (117, dt.date(2026, 11, 13))
    assert document["intro"].startswith("If you would like to know more")
    assert [i["programme"] for i in document["items"]] == [
        "Regional Improvement Plan 2026–27: consultation",
        "Children missing education: regional audit tool",
        "Workforce turnover analysis",
    ]
    assert "- Are the four priorities the right ones for your authority?" in document["items"][0]["action"]
    assert document["items"][2]["remind_until"] == dt.date(2026, 11, 27)
    assert [(m["network"], m["date"]) for m in document["meetings"]] == [
        ("lead-members", dt.date(2026, 12, 11)), ("data-benchmarking", dt.date(2027, 1, 12)),
        ("qa-leads", dt.date(2026, 12, 7)),
        ("fostering", dt.date(2027, 1, 19)),
    ]  # fmt: skip
    assert "resources" not in document  # none has a URL: each is a comment to finish
    assert [n.line for n in imported.notes] == [3, 5, 7, 51, 81, 83, 85, 87, 89, 91]
    assert_nothing_lost(text, imported)
    assert [c["id"] for c in imported.contacts] == [
        "programme-manager", "data-and-information-manager", "education-network-lead",
        "convener-of-the-quality-assurance", "adoption-fostering-and-early-help",
    ]  # fmt: skip


def test_another_office_s_layout() -> None:
    imported = run(OTHER_OFFICE)
    document = load(imported)
    assert (document["number"], document["date"]) == (42, dt.date(2027, 1, 8))
    first, survey = document["items"]
    assert first["update"] == (
        "The partnership’s audit of early help found that:\n\n"
        "- referrals rose by 12%\n- waiting times fell\n- two pilots closed\n- one new hub opened\n"
        "- staff turnover held\n"
        "1. first finding\n2. second finding\n"
    )
    assert first["links"] == [
        {"text": "Read more on the audit page", "url": "https://partnership.example.org/audit"},
        {"text": "The reply form", "url": "https://partnership.example.org/form"},
    ]
    assert first["action"] == "Reply to “Jo Bloggs” by 22 January 2027.\n"
    assert survey["remind_until"] == dt.date(2027, 1, 29)
    assert survey["action"] == "Complete it at <https://survey.example.org/send>\n"
    assert document["meetings"] == [
        {
            "network": "send",
            "title": "SEND Network",
            "date": dt.date(2027, 1, 14),
            "start": "10:00",
            "end": "12:00",
            "location": "County Hall",
        }
    ]
    assert document["resources"] == [
        {
            "title": "Early help toolkit",
            "publisher": "Partnership Office",
            "published": dt.date(2027, 1, 4),
            "url": "https://partnership.example.org/toolkit",
        }
    ]
    assert [(c["id"], c["name"], c["email"], c["phone"]) for c in imported.contacts] == [
        ("programme-lead", "Jo Bloggs", "jo.bloggs@partnership.example.org", "01234 567890")
    ]
    assert {n.line for n in imported.notes} >= {1, 28}  # the masthead line and "Something odd here"
    assert_nothing_lost(OTHER_OFFICE, imported)


@pytest.mark.parametrize("seed", ["002-regional-update.txt", "001-network-minutes.txt"])
def test_text_it_cannot_read_is_kept_as_comments(seed: str) -> None:
    text = (SEEDS / seed).read_text(encoding="utf-8")
    imported = run(text, number=1, date=dt.date(2026, 1, 9))
    assert_nothing_lost(text, imported)
