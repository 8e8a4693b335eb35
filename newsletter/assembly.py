"""An issue as of its date, assembled from the whole folder, and its per-network variants."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .content import Action, Article, Contact, Image, Issue, IssueSection, Item, Meeting, Minutes, Newsletter, Resource
from .folder import Folder
from .images import local_name
from .links import image_url


@dataclass(frozen=True)
class Reminder:
    """An earlier issue's item repeated until its `remind_until`."""

    item: Item
    issue_number: int
    issue_date: dt.date


@dataclass(frozen=True)
class Section:
    """A section as printed: its heading, and the articles and items under it."""

    title: str
    articles: tuple[Article, ...]
    items: tuple[Item, ...]
    id: str | None = None  # the standing section of newsletter.yaml, if it is one
    intro: str | None = None

    def for_networks(self, networks: frozenset[str]) -> Section:
        articles = tuple(a for a in self.articles if a.for_networks(networks))
        return dataclasses.replace(
            self, articles=articles, items=tuple(i for i in self.items if i.for_networks(networks))
        )


@dataclass(frozen=True)
class OpenActions:
    """The actions of one network meeting still open on the issue's date."""

    minutes: Minutes
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Picture:
    """An image as the email links it: its address, and its pixel size when it is a file of ours."""

    url: str
    width: int | None = None
    height: int | None = None

    def width_in(self, column: int) -> int:
        """Its width in the email: its own, never wider than `column`; a picture from elsewhere fills the column."""
        return column if self.width is None else min(self.width, column)


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
    sections: tuple[Section, ...] = ()
    actions: tuple[OpenActions, ...] = ()
    pictures: dict[str, Picture] = dataclasses.field(default_factory=dict, compare=False)  # by Image.src

    def variant(self, networks: frozenset[str] | set[str] | None) -> AssembledIssue:
        """The issue as a reader of `networks` sees it: items, articles, reminders and actions for others left out."""
        if networks is None:
            return self
        networks = frozenset(networks)
        items = tuple(i for i in self.items if i.for_networks(networks))
        reminders = tuple(r for r in self.reminders if r.item.for_networks(networks))
        sections = tuple(s for s in (s.for_networks(networks) for s in self.sections) if s.articles or s.items)
        actions = tuple(a for a in self.actions if a.minutes.network in networks)
        preheader = self.preheader
        if preheader in set(_headlines(self.items, self.sections)) - set(_headlines(items, sections)):
            # The default preheader names the first item: a reader who does not get that item must not see it.
            preheader = _first_headline(items, sections) or (reminders[0].item.programme if reminders else self.subject)
        return dataclasses.replace(
            self,
            items=items,
            reminders=reminders,
            sections=sections,
            actions=actions,
            preheader=preheader,
            audience=networks,
        )

    def picture(self, image: Image) -> Picture:
        return self.pictures[image.src]

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
            "sections": [
                {
                    "title": s.title,
                    **({"section": s.id} if s.id else {}),
                    **({"intro": s.intro} if s.intro else {}),
                    "articles": [dump(a) for a in s.articles],
                    "items": [dump(i) for i in s.items],
                }
                for s in self.sections
            ],
            "actions": [{**dump(a.minutes), "actions": [dump(action) for action in a.actions]} for a in self.actions],
        }


def _headlines(items: tuple[Item, ...], sections: tuple[Section, ...]) -> list[str]:
    """The headings of the issue's pieces in print order: items, then each section's articles and items."""
    out = [i.programme for i in items]
    for section in sections:
        out += [a.title for a in section.articles] + [i.programme for i in section.items]
    return out


def _first_headline(items: tuple[Item, ...], sections: tuple[Section, ...]) -> str | None:
    found = _headlines(items, sections)
    return found[0] if found else None


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
        for item in [*old.items, *(i for s in old.sections for i in s.items)]
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

    networks = tuple(issue.networks or (n.id for n in newsletter.networks))
    items = tuple(issue.items)
    sections = _sections(issue, newsletter)
    assembled = AssembledIssue(
        newsletter=newsletter,
        number=issue.number,
        date=date,
        subject=issue.subject or default_subject(newsletter, issue.number, date),
        preheader=issue.preheader or _first_headline(items, sections) or "",
        intro=issue.intro,
        networks=networks,
        items=items,
        reminders=reminders,
        meetings=tuple(sorted(meetings.values(), key=lambda m: m.key)),
        resources=tuple(ordered_resources),
        contacts=tuple(newsletter.contacts),
        templates=folder.templates,
        sections=sections,
        actions=open_actions(list(folder.minutes.values()), date, networks=networks),
    )
    return dataclasses.replace(assembled, pictures=_pictures(folder, assembled))


def _sections(issue: Issue, newsletter: Newsletter) -> tuple[Section, ...]:
    """The issue's sections in print order: standing ones in newsletter.yaml's order, and a section with a title
    of its own where the issue puts it, after the standing section before it."""
    keyed: list[tuple[tuple[int, int, int], Section]] = []
    after = -1
    for n, section in enumerate(issue.sections):
        if section.section is not None:
            after = newsletter.section_order(section.section)
        keyed.append(((after, section.section is None, n), _section(section, newsletter)))
    return tuple(section for _, section in sorted(keyed, key=lambda pair: pair[0]))


def _section(section: IssueSection, newsletter: Newsletter) -> Section:
    standing = next((s for s in newsletter.sections if s.id == section.section), None)
    title = section.title or (standing.title if standing else "")
    return Section(title, tuple(section.articles), tuple(section.items), section.section, section.intro)


def open_actions(minutes: list[Minutes], date: dt.date, *, networks: tuple[str, ...]) -> tuple[OpenActions, ...]:
    """The actions an issue of `date` reminds its networks of: from meetings before it, not done and not past due."""
    found = []
    for meeting in minutes:
        if meeting.date < date and meeting.network in networks:
            actions = tuple(a for a in meeting.actions if a.open_on(date))
            if actions:
                found.append(OpenActions(meeting, actions))
    return tuple(found)


def _pictures(folder: Folder, issue: AssembledIssue) -> dict[str, Picture]:
    """Each picture the issue shows, by its `src`: a file of content/images/ at its public address, or the URL."""
    images = [issue.newsletter.logo, *(i.image for i in issue.items), *(r.item.image for r in issue.reminders)]
    for section in issue.sections:
        images += [a.image for a in section.articles] + [i.image for i in section.items]
    pictures = {}
    for image in images:
        if image is None:
            continue
        name = local_name(image.src)
        if name is None:
            pictures[image.src] = Picture(image.src)
        else:
            found = folder.image(name)  # checked when the folder was loaded
            url = image_url(issue.newsletter.public_url, found.public_name)
            pictures[image.src] = Picture(url, found.width, found.height)
    return pictures
