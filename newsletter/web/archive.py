"""The public archive: the index of sent issues, each issue's page, their Atom feed, and meeting invitations (.ics)."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..assembly import assemble, default_subject
from ..calendar import find_meeting, meeting_ics
from ..errors import NotFound
from ..feed import FeedEntry, atom_feed
from ..folder import Folder
from ..ledger import sent_issues
from ..links import archive_url
from .pages import page
from .security import ISSUE_CSP


def sent_in_folder(request: Request) -> tuple[Folder, list[tuple[dt.date, dt.datetime]]]:
    """The folder, and the issues of it that have been sent (newest first) with when their send started."""
    folder = request.app.state.content.folder()
    sent = sent_issues(request.app.state.engine)
    return folder, sorted(((d, at) for d, at in sent.items() if d in folder.issues), reverse=True)


def archive_index(request: Request) -> Response:
    folder, sent = sent_in_folder(request)
    issues = []
    for date, _ in sent:
        issue = folder.issues[date]
        issues.append((issue, issue.subject or default_subject(folder.newsletter, issue.number, date)))
    return page(request, "archive.html", issues=issues)


def archive_issue(request: Request) -> Response:
    """A sent issue as its public (not personalised) email HTML; an issue not sent yet is not published."""
    try:
        date = dt.date.fromisoformat(request.path_params["date"])
    except ValueError:
        return page(
            request, "error.html", 404, title="No such issue", message="Issue addresses look like /archive/2026-11-27."
        )
    _, sent = sent_in_folder(request)
    if date not in dict(sent):
        return page(request, "error.html", 404, title="No such issue", message=f"No issue dated {date} has been sent.")
    html = request.app.state.content.issue_html(date)
    return HTMLResponse(html, headers={"Content-Security-Policy": ISSUE_CSP})


def feed(request: Request) -> Response:
    folder, sent = sent_in_folder(request)
    base = folder.newsletter.public_url
    entries = []
    for date, started in sent:
        issue = assemble(folder, date)
        entries.append(FeedEntry(issue.subject, archive_url(base, date), started, issue.preheader))
    return Response(atom_feed(folder.newsletter, entries), media_type="application/atom+xml")


def meeting(request: Request) -> Response:
    """A meeting of any issue as a calendar invitation to download."""
    slug = request.path_params["slug"]
    folder = request.app.state.content.folder()
    try:
        found = find_meeting(folder, slug)
    except NotFound:
        return page(request, "error.html", 404, title="No such meeting", message="This meeting is not in any issue.")
    return Response(
        meeting_ics(found, folder.newsletter),
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{slug}.ics"'},
    )
