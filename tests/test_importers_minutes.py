"""Minutes as plain text read for their actions, line by line and the whole sample."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from newsletter.importers.minutes import NOBODY, parse_action, read_minutes, to_yaml

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
MEETING = dt.date(2021, 3, 10)


@pytest.mark.parametrize(
    ("text", "owner", "action", "due"),
    [
        (
            "Douglas Sinclair will share the East Sussex audit tool",
            "Douglas Sinclair",
            "share the East Sussex audit tool",
            None,
        ),
        ("Douglas Sinclair to share East Sussex protocol", "Douglas Sinclair", "share East Sussex protocol", None),
        ("Kent will share the programme.", "Kent", "share the programme", None),
        ("Stuart plans to do a monthly touch base", "Stuart", "do a monthly touch base", None),
        (
            "West Sussex agreed to circulate the paper by 24th March",
            "West Sussex",
            "circulate the paper by 24th March",
            dt.date(2021, 3, 24),
        ),
        (
            "Stuart will aim for this before the end of April",
            "Stuart",
            "aim for this before the end of April",
            dt.date(2021, 4, 30),
        ),
        (
            "Mary O’Brien will send it by Friday 2 April 2021",
            "Mary O’Brien",
            "send it by Friday 2 April 2021",
            dt.date(2021, 4, 2),
        ),
        ("colleagues to share their plans", "Colleagues", "share their plans", None),
        ("Thoughts/feedback to be sent to Stuart", NOBODY, "Thoughts/feedback to be sent to Stuart", None),
        (
            "Nominees to be sent to Diane by 24th March",
            NOBODY,
            "Nominees to be sent to Diane by 24th March",
            dt.date(2021, 3, 24),
        ),
        (
            "Dates to be agreed – Diane will send a template",
            "Diane",
            "Dates to be agreed – Diane will send a template",
            None,
        ),
    ],
)
def test_an_action_s_owner_action_and_due_date(text: str, owner: str, action: str, due: dt.date | None) -> None:
    found = parse_action(text, line=1, meeting=MEETING)
    assert (found.owner, found.action, found.due) == (owner, action, due)


@pytest.mark.parametrize(
    ("text", "doubt"),
    [
        ("Feedback to Stuart", "no owner named"),
        ("Dates to be agreed – Diane will send a template", "named inside the text"),
        ("Stuart will report back by the next meeting", "a due date I could not read: 'by the next meeting'"),
        ("Stuart will report back by 1 January 2021", "before the meeting"),
    ],
)
def test_what_the_editor_must_confirm(text: str, doubt: str) -> None:
    found = parse_action(text, line=1, meeting=MEETING)
    assert any(doubt in d for d in found.doubts), found.doubts


@pytest.mark.parametrize(
    "text",
    [
        "ACTION: Douglas Sinclair will share the tool",
        "ACTION  Douglas Sinclair will share the tool",
        "3.3. ACTION  Douglas Sinclair will share the tool",
        "Action: Douglas Sinclair will share the tool",
        "ACTION – Douglas Sinclair will share the tool",
        "action - Douglas Sinclair will share the tool",
        "ACTIONS:\n· Douglas Sinclair will share the tool",
        "ACTIONS\r\n• Douglas Sinclair will share the tool\r\n",
        "Actions:\n\n  - Douglas Sinclair will share the tool",
        "ACTIONS\n1. Douglas Sinclair will share the tool",
        "ACTIONS:\nDouglas Sinclair will share the tool",
        "ACTION:\u00a0Douglas\u00a0Sinclair will share the tool  ",
    ],
)
def test_every_way_minutes_mark_an_action(text: str) -> None:
    (action,) = read_minutes(text, network="qa-leads", network_name="QA Leads", date=MEETING).actions
    assert (action.owner, action.action) == ("Douglas Sinclair", "share the tool")


def test_an_actions_list_ends_where_its_bullets_end() -> None:
    text = "ACTIONS\n· Stuart will host\n· Kent will share\n10. AOB\n· a bullet of another part\nPlain text."
    found = read_minutes(text, network="qa-leads", network_name="QA Leads", date=MEETING)
    assert [a.owner for a in found.actions] == ["Stuart", "Kent"]


def test_lines_that_may_be_actions_are_doubts_not_actions() -> None:
    text = "Minutes\n6.2. Stuart will raise the proposal again.\nThe action plan was agreed.\nWe will meet again."
    found = read_minutes(text, network="qa-leads", network_name="QA Leads", date=MEETING)
    assert found.actions == []
    assert [(d.line, d.reason) for d in found.doubts] == [(2, "a line that may be an action")]
    assert found.doubts[0].maybe is not None and found.doubts[0].maybe.owner == "Stuart"


@pytest.mark.parametrize(
    ("first", "title"),
    [
        ("SESLIP Quality Assurance Leads Meeting – 10 March 2021", "SESLIP Quality Assurance Leads Meeting"),
        ("QA LEADS NETWORK: 10/03/2021", "QA LEADS NETWORK"),
        ("1. Attendees:", "QA Leads meeting"),
        ("ACTION: Kent will share", "QA Leads meeting"),
    ],
)
def test_the_title_is_the_heading_without_its_date(first: str, title: str) -> None:
    assert read_minutes(first + "\nText", network="qa-leads", network_name="QA Leads", date=MEETING).title == title


def test_a_heading_with_another_date_is_a_doubt() -> None:
    found = read_minutes("QA Leads – 11 March 2021", network="qa-leads", network_name="QA Leads", date=MEETING)
    assert "not 2021-03-10" in found.doubts[0].reason


def test_the_sample_minutes() -> None:
    text = (SEEDS / "001-network-minutes.txt").read_text(encoding="utf-8")
    found = read_minutes(text, network="qa-leads", network_name="Quality Assurance Leads Network", date=MEETING)
    assert found.title == "SESLIP Quality Assurance Leads Meeting"
    assert [(a.line, a.owner) for a in found.actions] == [
        (131, "Douglas Sinclair"), (174, "Douglas Sinclair"), (203, "Stuart"), (204, NOBODY), (211, "Stuart"),
        (212, NOBODY), (243, "Kent"), (250, NOBODY), (255, "Stuart"), (256, "Diane"), (266, "Colleagues"),
    ]  # fmt: skip
    assert found.actions[1].action == "share the East Sussex multi-agency CME audit tool"
    assert found.actions[5].due == dt.date(2021, 3, 24)
    assert [d.line for d in found.doubts] == [208]

    document = YAML(typ="safe").load(to_yaml(found, source="001-network-minutes.txt"))
    assert set(document) == {"network", "date", "title", "actions"}
    assert (document["network"], document["date"]) == ("qa-leads", MEETING)
    assert document["actions"][0] == {
        "owner": "Douglas Sinclair",
        "action": "share East Sussex protocol developed as part of Care Leavers transitions work - the key is to get "
        "Adult Services’ buy-in and ownership",
        "done": False,
    }
    assert document["actions"][5]["due"] == dt.date(2021, 3, 24)
    assert all(set(a) <= {"owner", "action", "due", "done"} and a["done"] is False for a in document["actions"])
