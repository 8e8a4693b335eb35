"""A network meeting as an iCalendar file: the email's "Add to calendar" link."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import icalendar

from .content import Meeting, Newsletter
from .errors import NotFound
from .folder import Folder
from .links import meeting_slug


def find_meeting(folder: Folder, slug: str) -> Meeting:
    """The meeting whose links.meeting_slug is `slug`, in any issue of the folder."""
    for date in sorted(folder.issues, reverse=True):  # a meeting announced again: the newest entry wins
        for meeting in folder.issues[date].meetings:
            if meeting_slug(meeting) == slug:
                return meeting
    raise NotFound(f"no meeting {slug!r}")


def meeting_uid(meeting: Meeting, newsletter: Newsletter) -> str:
    """Stable across downloads, so a calendar updates the event instead of adding a second one."""
    return f"{meeting_slug(meeting)}@{urlsplit(newsletter.public_url).hostname}"


def meeting_ics(meeting: Meeting, newsletter: Newsletter, *, now: dt.datetime | None = None) -> bytes:
    """One VEVENT in the schedule's time zone (Europe/London by default); all day when there is no start."""
    zone = newsletter.schedule.zone if newsletter.schedule else ZoneInfo("Europe/London")
    network = newsletter.network(meeting.network)
    contact = newsletter.contact(meeting.contact) if meeting.contact else None

    event = icalendar.Event()
    event.add("uid", meeting_uid(meeting, newsletter))
    event.add("dtstamp", (now or dt.datetime.now(dt.UTC)).replace(microsecond=0))
    event.add("summary", meeting.title)
    if meeting.start:
        start = dt.datetime.combine(meeting.date, dt.time.fromisoformat(meeting.start), zone)
        event.add("dtstart", start)
        if meeting.end:  # without one, no end is invented: RFC 5545 reads the event as ending when it starts
            event.add("dtend", dt.datetime.combine(meeting.date, dt.time.fromisoformat(meeting.end), zone))
    else:
        event.add("dtstart", meeting.date)
        event.add("dtend", meeting.date + dt.timedelta(days=1))
    if meeting.location:
        event.add("location", meeting.location)
        if meeting.location.lower().startswith(("https://", "http://")):
            event.add("url", meeting.location)

    description = [f"{network.name} meeting, announced in {newsletter.name}."]
    if contact:
        description.append(f"Contact: {contact.name}, {contact.role}")
        description.extend(
            f"{label}: {value}" for label, value in (("Email", contact.email), ("Phone", contact.phone)) if value
        )
        if contact.email:
            organizer = icalendar.vCalAddress(f"mailto:{contact.email}")
            organizer.params["cn"] = contact.name
            event.add("organizer", organizer)
    event.add("description", "\n".join(description))
    event.add("categories", [network.name])

    calendar = icalendar.Calendar()
    calendar.add("prodid", f"-//{newsletter.name}//newsletter//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    year = dt.timedelta(days=366)
    calendar.add_missing_timezones(first_date=meeting.date - year, last_date=meeting.date + year)
    return calendar.to_ical()
