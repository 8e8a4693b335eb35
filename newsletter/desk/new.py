"""The next issue file: number + 1, dated at the next scheduled firing, with what carries forward noted in comments."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from ..assembly import AssembledIssue, assemble
from ..content import Issue, Item
from ..errors import ConfigError, ContentError
from ..folder import Folder, load_folder
from ..scheduler.timing import issue_date, next_firings
from .schema import SCHEMA_DIR

SKELETON_PROGRAMME = "Programme name"
SKELETON_UPDATE = "What happened, in a few sentences."
SKELETON_ACTION = "What readers should do, and by when."


@dataclass(frozen=True)
class NextIssue:
    """The issue `newsletter new` would start: its number, date, and what the folder carries into it."""

    number: int
    date: dt.date
    carried: AssembledIssue | None  # None when an earlier file's errors stop assembling


def next_issue(folder: Folder, *, date: dt.date | None = None, today: dt.date | None = None) -> NextIssue:
    """Number + 1 of the newest valid issue, dated at the next firing after the newest issue (or `date`)."""
    number = max((i.number for i in folder.issues.values()), default=0) + 1
    dates = folder.dates()
    when = date or _next_date(folder, dates[-1] if dates else None, today or dt.datetime.now(dt.UTC).date())
    skeleton = Issue(number=number, date=when, items=[Item(programme=SKELETON_PROGRAMME, update=SKELETON_UPDATE)])
    drafted = dataclasses.replace(folder, issues={**folder.issues, when: skeleton})
    try:
        carried: AssembledIssue | None = assemble(drafted, when)
    except ContentError:
        carried = None
    return NextIssue(number, when, carried)


def _next_date(folder: Folder, newest: dt.date | None, today: dt.date) -> dt.date:
    """The day of the first firing after the newest issue's day (no issues yet: after yesterday)."""
    after = newest or today - dt.timedelta(days=1)
    schedule = folder.newsletter.schedule
    if schedule is None:
        return after + dt.timedelta(days=7) if newest else today
    end_of_day = dt.datetime.combine(after, dt.time(23, 59, 59), tzinfo=schedule.zone)
    firings = next_firings(schedule, after=end_of_day, count=1)
    if not firings:
        raise ConfigError(f"the schedule '{schedule.cron}' never fires after {after}: give the date with --date")
    return issue_date(firings[0], schedule.zone)


def issue_text(plan: NextIssue, *, schema: str = f"../../{SCHEMA_DIR}/issue.schema.json") -> str:
    """The new file's YAML: the schema line, what carries forward as comments, and a skeleton item."""
    lines = [f"# yaml-language-server: $schema={schema}", f"# Issue {plan.number}, for {plan.date:%A %-d %B %Y}."]
    lines += _carried_comments(plan.carried)
    lines += [
        f"number: {plan.number}",
        f"date: {plan.date.isoformat()}",
        "items:",
        f"  - programme: {SKELETON_PROGRAMME}",
        "    update: |",
        f"      {SKELETON_UPDATE}",
        "    action: |",
        f"      {SKELETON_ACTION}",
    ]
    return "\n".join(lines) + "\n"


def _carried_comments(carried: AssembledIssue | None) -> list[str]:
    if carried is None:
        return ["#", "# (What carries forward is not shown: an earlier issue file has errors; run `newsletter check`.)"]
    found = [
        f"#   reminder: {r.item.programme} (from No {r.issue_number}, until {r.item.remind_until})"
        for r in carried.reminders
    ]
    found += [
        f"#   meeting: {m.date}{' ' + m.start if m.start else ''} {m.title} ({m.network})" for m in carried.meetings
    ]
    found += [f"#   resource: {r.title} ({r.publisher})" for r in carried.resources]
    if not found:
        return ["#", "# Nothing carries forward into this issue from earlier ones."]
    return ["#", "# Carried forward into this issue (change them in the issue that announced them):", *found, "#"]


def new_issue(root: Path, *, date: dt.date | None = None, today: dt.date | None = None) -> Path:
    """Write ROOT/content/issues/DATE.yaml for the next issue; never overwrites (ConfigError if it exists)."""
    folder = load_folder(root)
    plan = next_issue(folder, date=date, today=today)
    path = folder.issues_dir / f"{plan.date.isoformat()}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: open it, or give another --date") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(issue_text(plan))
    return path
