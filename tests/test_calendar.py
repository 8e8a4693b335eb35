"""Meeting invitations (.ics): stable UID, schedule time zone, all-day events, organizer."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest

from newsletter.calendar import find_meeting, meeting_ics, meeting_uid
from newsletter.content import Meeting
from newsletter.errors import NotFound
from newsletter.folder import load_folder
from newsletter.links import meeting_slug

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def folder(example_dir):
    return load_folder(example_dir)


def event_of(ics: bytes) -> icalendar.Event:
    calendar = icalendar.Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    return event


def test_timed_meeting_in_london_time_with_organizer(folder):
    meeting = Meeting(
        network="fostering",
        title="Fostering Network",
        date=dt.date(2027, 7, 19),
        start="10:30",
        end="12:00",
        location="Online (Teams)",
        contact="fostering-lead",
    )
    ics = meeting_ics(meeting, folder.newsletter)
    event = event_of(ics)
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert start == dt.datetime(2027, 7, 19, 10, 30, tzinfo=LONDON) and start.utcoffset() == dt.timedelta(
        hours=1
    )  # BST
    assert end == dt.datetime(2027, 7, 19, 12, 0, tzinfo=LONDON)
    assert b"DTSTART;TZID=Europe/London:20270719T103000" in ics and b"BEGIN:VTIMEZONE" in ics
    assert str(event["location"]) == "Online (Teams)"
    assert str(event["organizer"]) == "mailto:kwame.mensah@improvement.example.org"
    assert event["organizer"].params["CN"] == "Kwame Mensah"
    assert "Fostering Network meeting" in str(event["description"])


def test_uid_is_stable_and_names_the_public_domain(folder):
    meeting = folder.issues[dt.date(2026, 11, 27)].meetings[0]
    first = event_of(meeting_ics(meeting, folder.newsletter, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    again = event_of(meeting_ics(meeting, folder.newsletter))
    assert str(first["uid"]) == str(again["uid"]) == f"{meeting_slug(meeting)}@news.improvement.example.org"
    assert meeting_uid(meeting, folder.newsletter) == str(first["uid"])


def test_meeting_without_start_is_an_all_day_event(folder):
    meeting = Meeting(network="send", title="SEND Network away day", date=dt.date(2027, 3, 4))
    event = event_of(meeting_ics(meeting, folder.newsletter))
    assert event.decoded("dtstart") == dt.date(2027, 3, 4) and event.decoded("dtend") == dt.date(2027, 3, 5)
    assert "organizer" not in event


def test_start_without_end_invents_no_end_and_a_url_location_is_also_the_url(folder):
    meeting = Meeting(
        network="send",
        title="SEND Network",
        date=dt.date(2027, 1, 12),
        start="14:00",
        location="https://meet.example.org/send",
    )
    event = event_of(meeting_ics(meeting, folder.newsletter))
    assert "dtend" not in event and "duration" not in event
    assert event.decoded("dtstart").utcoffset() == dt.timedelta(0)  # GMT in January
    assert str(event["url"]) == "https://meet.example.org/send"


def test_find_meeting_by_slug(folder):
    meeting = folder.issues[dt.date(2026, 11, 27)].meetings[0]
    assert find_meeting(folder, meeting_slug(meeting)) == meeting
    with pytest.raises(NotFound):
        find_meeting(folder, "2027-01-01-nobody-no-meeting")
