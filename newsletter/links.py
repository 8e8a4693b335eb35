"""The public URLs the emails link to and the web service serves, in one place."""

from __future__ import annotations

import datetime as dt
import re

from .content import Meeting


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def unsubscribe_url(public_url: str, token: str) -> str:
    """The List-Unsubscribe URL: GET shows a confirm page, POST unsubscribes in one click."""
    return f"{_base(public_url)}/unsubscribe/{token}"


def preferences_url(public_url: str, token: str) -> str:
    return f"{_base(public_url)}/preferences/{token}"


def archive_index_url(public_url: str) -> str:
    return f"{_base(public_url)}/archive/"


def archive_url(public_url: str, date: dt.date) -> str:
    """The public (not personalised) version of an issue: the emails' "view in your browser"."""
    return f"{_base(public_url)}/archive/{date.isoformat()}"


def feed_url(public_url: str) -> str:
    return f"{_base(public_url)}/archive/feed.atom"


def meeting_slug(meeting: Meeting) -> str:
    """A stable name for a meeting: its date, network and title."""
    title = re.sub(r"[^a-z0-9]+", "-", meeting.title.lower()).strip("-")
    return f"{meeting.date.isoformat()}-{meeting.network}-{title}"[:120]


def meeting_ics_url(public_url: str, meeting: Meeting) -> str:
    """The "Add to calendar" link: an .ics file for one meeting."""
    return f"{_base(public_url)}/meetings/{meeting_slug(meeting)}.ics"


def image_url(public_url: str, public_name: str) -> str:
    """A picture of content/images/ at its published name (images.ImageFile.public_name)."""
    return f"{_base(public_url)}/images/{public_name}"
