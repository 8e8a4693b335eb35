"""An issue as of its date, assembled from the whole folder, and its per-network variants."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .content import Contact, Item, Meeting, Newsletter, Resource
from .folder import Folder


@dataclass(frozen=True)
class Reminder:
    """An earlier issue's item repeated until its `remind_until`."""

    item: Item
    issue_number: int
    issue_date: dt.date


@dataclass(frozen=True)
class AssembledIssue:
    """Everything one email shows, before rendering. `audience` is None for the full issue."""

    newsletter: Newsletter
    number: int
    date: dt.date
    subject: str
    preheader: str
    intro: str | None
    networks: tuple[str, ...]  # who the issue goes to
    items: tuple[Item, ...]
    reminders: tuple[Reminder, ...]
    meetings: tuple[Meeting, ...]
    resources: tuple[Resource, ...]
    contacts: tuple[Contact, ...]
    audience: frozenset[str] | None = None
    templates: Path | None = None  # the folder's own email templates, if any

    def variant(self, networks: frozenset[str] | set[str] | None) -> AssembledIssue:
        """The issue as a reader of `networks` sees it: items and reminders targeted elsewhere left out."""
        if networks is None:
            return self
        networks = frozenset(networks)
        items = tuple(i for i in self.items if i.for_networks(networks))
        reminders = tuple(r for r in self.reminders if r.item.for_networks(networks))
        preheader = self.preheader
        if preheader in {i.programme for i in self.items if i not in items}:
            # The default preheader names the first item: a reader who does not get that item must not see it.
            preheader = items[0].programme if items else reminders[0].item.programme if reminders else self.subject
        return dataclasses.replace(self, items=items, reminders=reminders, preheader=preheader, audience=networks)

    def as_json(self) -> dict:
        """The assembled issue as plain data, items keeping FORMAT.md's keys."""
        dump = lambda model: model.model_dump(mode="json", exclude_none=True)  # noqa: E731
        return {
            "number": self.number,
            "date": self.date.isoformat(),
            "subject": self.subject,
            "preheader": self.preheader,
            "items": [dump(i) for i in self.items],
            "reminders": [
                {**dump(r.item), "issue_number": r.issue_number, "issue_date": r.issue_date.isoformat()}
                for r in self.reminders
            ],
            "meetings": [dump(m) for m in self.meetings],
            "resources": [dump(r) for r in self.resources],
            "contacts": [dump(c) for c in self.contacts],
            "networks": list(self.networks),
        }


def default_subject(newsletter: Newsletter, number: int, date: dt.date) -> str:
    return f"{newsletter.name} – Update No {number} – {date.day} {date:%B %Y}"


def assemble(folder: Folder, date: dt.date | None = None) -> AssembledIssue:
    """The issue of `date` (default: newest) with everything carried forward to it."""
    issue = folder.issue(date)
    date = issue.date
    newsletter = folder.newsletter
    earlier = [folder.issues[d] for d in sorted(folder.issues) if d < date]
    announced = [*earlier, issue]

    reminders = tuple(
        Reminder(item, old.number, old.date)
        for old in reversed(earlier)
        for item in old.items
        if item.remind_until is not None and item.remind_until >= date
    )

    meetings: dict[tuple, Meeting] = {}
    for source in announced:
        for meeting in source.meetings:
            if meeting.date >= date:
                meetings[meeting.key] = meeting  # a meeting announced again replaces the earlier entry

    window = dt.timedelta(weeks=newsletter.carry.resources_weeks)
    resources: dict[str, Resource] = {}
    for source in announced:
        if date - source.date <= window:
            for resource in source.resources:
                resources[resource.url] = resource
    ordered_resources = sorted(
        resources.values(), key=lambda r: (r.published is None, -(r.published or dt.date.min).toordinal())
    )

    return AssembledIssue(
        newsletter=newsletter,
        number=issue.number,
        date=date,
        subject=issue.subject or default_subject(newsletter, issue.number, date),
        preheader=issue.preheader or issue.items[0].programme,
        intro=issue.intro,
        networks=tuple(issue.networks or (n.id for n in newsletter.networks)),
        items=tuple(issue.items),
        reminders=reminders,
        meetings=tuple(sorted(meetings.values(), key=lambda m: m.key)),
        resources=tuple(ordered_resources),
        contacts=tuple(newsletter.contacts),
        templates=folder.templates,
    )
