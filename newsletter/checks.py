"""Warnings about an issue that is valid but would read or deliver badly: size, links, missing parts."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from . import markup
from .assembly import assemble
from .content import Image, Issue, Item
from .errors import Problem
from .folder import Folder, Loc, Source
from .images import local_name
from .render import render

SIZE_BUDGET = 90 * 1024  # Gmail clips an email's HTML near 102 KB
FROM_NAME_LIMIT = 30  # characters of the From name that phones and narrow inbox columns show before cutting it
EMPTY_SUBJECT_WORDS = frozenset(["update", "no", "number", "issue", "edition", "newsletter", "weekly", "week", "the"])
HEAVY_PICTURE = 300 * 1024  # slow to load on a phone: 600 px wide needs far less
VAGUE = frozenset(
    [
        "here",
        "click here",
        "click",
        "read more",
        "more",
        "read this",
        "this",
        "link",
        "this link",
        "learn more",
        "find out more",
        "more info",
        "more information",
        "details",
        "go",
        "continue",
        "download",
        "website",
        "page",
    ]
)


def check(folder: Folder, *, date: dt.date | None = None) -> list[Problem]:
    """Warnings for the issue of `date` (default: newest), its standing settings and later drafts; errors raise."""
    issue = folder.issue(date)
    source = folder.sources[issue.date]
    found: list[Problem] = list(folder.problems(issue.date)[1])
    warn = _Warner(found)
    for i, item in enumerate(issue.items):
        if not item.action:
            warn(source, ("items", i), "no action: tell readers what to do (Action Required)")
        for field in ("update", "action"):
            warn.markdown(source, ("items", i, field), getattr(item, field))
        for k, link in enumerate(item.links):
            warn.link(source, ("items", i, "links", k), link.text, link.url)
    warn.markdown(source, ("intro",), issue.intro)
    for j, meeting in enumerate(issue.meetings):
        if not meeting.contact:
            warn(source, ("meetings", j), "no contact: say who to ask about this meeting")
        if meeting.location and re.match(r"https?://", meeting.location, flags=re.IGNORECASE):
            warn.link(source, ("meetings", j, "location"), None, meeting.location)
    for k, resource in enumerate(issue.resources):
        warn.link(source, ("resources", k), resource.title, resource.url)
    standing = folder.newsletter_source
    sender = folder.newsletter.sender.name
    if sender and len(sender) > FROM_NAME_LIMIT:
        warn(
            standing,
            ("sender", "name"),
            f"the From name is {len(sender)} characters: inboxes show about {FROM_NAME_LIMIT}, so readers see it cut",
        )
    if not issue.subject:
        warn(
            source, ("subject",), "no subject: the default says only the name and number; say what this issue is about"
        )
    elif says_nothing(issue.subject, folder.newsletter.name, issue.number):
        warn(
            source, ("subject",), "the subject says only the newsletter's name and number: say what this issue is about"
        )
    warn.markdown(standing, ("footer",), folder.newsletter.footer)
    warn.link(standing, ("public_url",), None, folder.newsletter.public_url)

    _check_sections(warn, source, issue)
    _check_pictures(warn, folder, source, issue)
    _check_actions(warn, folder, issue.date)

    html = render(assemble(folder, issue.date)).html
    size = len(html.encode("utf-8"))
    if size > SIZE_BUDGET:
        warn(
            source,
            (),
            f"the email is {size / 1024:.0f} KB of HTML; Gmail clips it near 102 KB: shorten or move items to the web",
        )
    return found


def says_nothing(subject: str, name: str, number: int) -> bool:
    """Whether `subject` has no word beyond the newsletter's name, its number, a date and words like "Update No"."""
    rest = subject.lower().replace(name.lower(), " ")
    months = {dt.date(2000, m, 1).strftime(form).lower() for m in range(1, 13) for form in ("%B", "%b")}
    words = [w for w in re.split(r"[\W_]+", rest) if w]
    return all(w in EMPTY_SUBJECT_WORDS or w in months or w.isdigit() or w == f"no{number}" for w in words)


def _check_sections(warn: _Warner, source: Source, issue: Issue) -> None:
    """Articles and the items inside sections: the same link and text checks as the week's items."""
    for s, section in enumerate(issue.sections):
        warn.markdown(source, ("sections", s, "intro"), section.intro)
        for a, article in enumerate(section.articles):
            warn.markdown(source, ("sections", s, "articles", a, "body"), article.body)
            for k, link in enumerate(article.links):
                warn.link(source, ("sections", s, "articles", a, "links", k), link.text, link.url)
        for i, item in enumerate(section.items):
            for field in ("update", "action"):
                warn.markdown(source, ("sections", s, "items", i, field), getattr(item, field))
            for k, link in enumerate(item.links):
                warn.link(source, ("sections", s, "items", i, "links", k), link.text, link.url)


def _check_pictures(warn: _Warner, folder: Folder, source: Source, issue: Issue) -> None:
    """A picture that is heavy, comes from another site, or whose alt text says nothing."""
    found: list[tuple[Source, Loc, Image | None]] = [(folder.newsletter_source, ("logo",), folder.newsletter.logo)]
    items: list[tuple[Loc, Item]] = [(("items", i), item) for i, item in enumerate(issue.items)]
    for s, section in enumerate(issue.sections):
        items += [(("sections", s, "items", i), item) for i, item in enumerate(section.items)]
        found += [(source, ("sections", s, "articles", a, "image"), x.image) for a, x in enumerate(section.articles)]
    found += [(source, (*loc, "image"), item.image) for loc, item in items]
    for where, loc, image in found:
        if image is None:
            continue
        name = local_name(image.src)
        if name is None:
            warn(
                where, (*loc, "src"), "a picture from another site may be blocked or vanish: put it in content/images/"
            )
        elif (size := folder.image(name).size) > HEAVY_PICTURE:
            warn(where, (*loc, "src"), f"{name} is {size // 1024} KB: slow on a phone; save it 1200 px wide at most")
        plain = image.alt.lower().strip(" .")
        if plain in {"image", "picture", "photo", "logo", "img"} or (name and plain == name.lower()):
            warn(where, (*loc, "alt"), f"alt text '{image.alt}' says nothing: say what the picture shows")


def _check_actions(warn: _Warner, folder: Folder, date: dt.date) -> None:
    """An action past its due date that the minutes do not mark done: done, or a new date?"""
    for key, minutes in folder.minutes.items():
        source = folder.minutes_sources[key]
        for a, action in enumerate(minutes.actions):
            if not action.done and action.due is not None and action.due < date:
                warn(
                    source,
                    ("actions", a, "due"),
                    f"{action.owner}'s action was due {action.due} and is not marked done: "
                    "set `done: true`, or a new `due` date",
                )


class _Warner:
    """Collects warnings, pointing into block scalars at the line of the link where it can."""

    def __init__(self, found: list[Problem]):
        self.found = found
        self._lines: dict[Path, list[str]] = {}

    def __call__(self, source: Source, loc: Loc, message: str, *, offset: int | None = None) -> None:
        """`offset`: the line within a markdown field's text, for a warning about that text."""
        problem = source.problem(loc, message, severity="warning")
        if offset is not None and problem.line and self._is_literal_block(source.path, problem.line):
            problem = Problem(problem.path, problem.line + 1 + offset, problem.field, problem.message, problem.severity)
        self.found.append(problem)

    def markdown(self, source: Source, loc: Loc, text: str | None) -> None:
        for link in markup.links(text):
            bare = link.text == link.url and not link.url.lower().startswith("mailto:")
            if bare:
                self(
                    source,
                    loc,
                    f"bare URL {link.url}: make it a link whose words say where it leads, e.g. [the report](...)",
                    offset=link.line,
                )
            self.link(source, loc, None if bare else link.text, link.url, offset=link.line)

    def link(self, source: Source, loc: Loc, text: str | None, url: str, *, offset: int | None = None) -> None:
        if text is not None:
            plain = " ".join(text.lower().split()).strip(" .:!?→>»…")
            if plain in VAGUE:
                self(source, loc, f"link text '{text}' says nothing: name what it leads to", offset=offset)
            elif re.match(r"(https?://|www\.)", plain):
                self(source, loc, f"link text is a bare URL ({text}): say where it leads instead", offset=offset)
        if url.lower().startswith("http://"):
            self(source, loc, f"link is not https: {url}", offset=offset)

    def _is_literal_block(self, path: Path, line: int) -> bool:
        """Whether the key on `line` starts a `|` block, whose text lines map one-to-one onto markdown lines."""
        if path not in self._lines:
            self._lines[path] = path.read_text(encoding="utf-8-sig").splitlines()
        text = self._lines[path][line - 1] if line <= len(self._lines[path]) else ""
        return bool(re.search(r":\s*\|[-+0-9]*\s*(#.*)?$", text))
