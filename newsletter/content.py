"""The content contract of FORMAT.md as pydantic models: newsletter.yaml and issue files."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError


class Model(BaseModel):
    """Unknown keys are errors: a misspelt key must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _single_line(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise PydanticCustomError("control_character", "must be one line, without control characters")
    return value.strip()


def _https_or_http_url(value: str) -> str:
    value = value.strip()
    if not re.fullmatch(r"https?://[^\s/$.?#][^\s]*", value, flags=re.IGNORECASE):
        raise PydanticCustomError("url", "invalid URL '{url}' (expected http:// or https://...)", {"url": value})
    return value


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", value):
        raise PydanticCustomError(
            "slug", "'{id}' is not an id: use lower-case letters, digits and hyphens", {"id": value}
        )
    return value


def _hhmm(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise PydanticCustomError("time", "'{value}' is not a time: use 24-hour HH:MM", {"value": value})
    return value


def _known(kind: str) -> Callable[[str, ValidationInfo], str]:
    """A validator that checks an id against the ids of `kind` passed in the validation context."""

    def check(value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get(kind)
        if known is not None and value not in known:
            close = difflib.get_close_matches(value, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PydanticCustomError(
                "unknown_id", "unknown {kind} '{id}'{hint}", {"kind": kind, "id": value, "hint": hint}
            )
        return value

    return check


MAX_LINE = 300  # a headline, name or title: longer is a paragraph in the wrong field
MAX_MARKDOWN = 20_000  # about eight pages: one item's text; longer would clip the email
Line = Annotated[str, AfterValidator(_single_line), Field(min_length=1, max_length=MAX_LINE)]
Markdown = Annotated[str, Field(min_length=1, max_length=MAX_MARKDOWN)]
Url = Annotated[str, AfterValidator(_https_or_http_url)]
Slug = Annotated[str, AfterValidator(_slug)]
Time = Annotated[str, AfterValidator(_hhmm)]
NetworkId = Annotated[str, AfterValidator(_known("network"))]
ContactId = Annotated[str, AfterValidator(_known("contact"))]
SectionId = Annotated[str, AfterValidator(_known("section"))]


# newsletter.yaml -----------------------------------------------------------------------------


class Sender(Model):
    name: Line
    email: EmailStr


class Schedule(Model):
    cron: Line
    timezone: Line = "Europe/London"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError("timezone", "unknown time zone '{tz}'", {"tz": value}) from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "cron", "invalid cron '{cron}': {why}", {"cron": value, "why": str(exc)}
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Network(Model):
    id: Slug
    name: Line
    description: str | None = None


class Contact(Model):
    id: Slug
    role: Line
    name: Line
    organisation: Line | None = None
    email: EmailStr | None = None
    phone: Line | None = None


class Carry(Model):
    resources_weeks: int = Field(26, ge=0)


class Section(Model):
    """A standing section of a sectioned newsletter ("Welcome", "Spotlight on..."), in print order."""

    id: Slug
    title: Line


class Image(Model):
    """A picture: `src` a file in content/images/ or an https URL; `alt` what a reader who cannot see it should know."""

    src: Line
    alt: Line


class Newsletter(Model):
    """Standing settings from newsletter.yaml."""

    name: Line
    sender: Sender
    reply_to: EmailStr | None = None
    public_url: Url
    schedule: Schedule | None = None
    networks: list[Network] = Field(min_length=1)
    contacts: list[Contact] = []
    footer: Markdown | None = None
    carry: Carry = Carry()
    address: Line | None = None  # the sender's postal address, printed in the footer
    logo: Image | None = None
    test_recipients: list[EmailStr] = []  # colleagues who get test copies ("Send a test")
    editors: list[EmailStr] = []  # who may sign in to the editor when it is served beyond this machine
    sections: list[Section] = []

    @field_validator("networks", "contacts", "sections")
    @classmethod
    def _unique_ids(cls, values: list, info: ValidationInfo) -> list:
        seen: set[str] = set()
        for value in values:
            if value.id in seen:
                raise PydanticCustomError("duplicate", "id '{id}' is used twice", {"id": value.id})
            seen.add(value.id)
        return values

    @property
    def network_ids(self) -> frozenset[str]:
        return frozenset(n.id for n in self.networks)

    def network(self, network_id: str) -> Network:
        return next(n for n in self.networks if n.id == network_id)

    def contact(self, contact_id: str) -> Contact:
        return next(c for c in self.contacts if c.id == contact_id)

    @property
    def validation_context(self) -> dict[str, frozenset[str]]:
        """What issue files are checked against: the network and contact ids defined here."""
        return {
            "network": self.network_ids,
            "contact": frozenset(c.id for c in self.contacts),
            "section": frozenset(s.id for s in self.sections),
        }

    def section_order(self, section_id: str) -> int:
        """Where the standing section `section_id` prints: its position in newsletter.yaml."""
        return next(i for i, s in enumerate(self.sections) if s.id == section_id)


# an issue file ------------------------------------------------------------------------------


class Link(Model):
    text: Line
    url: Url


class Item(Model):
    programme: Line
    update: Markdown
    action: Markdown | None = None
    links: list[Link] = []
    networks: list[NetworkId] | None = Field(None, min_length=1)  # [] would reach nobody
    remind_until: dt.date | None = None
    image: Image | None = None

    def for_networks(self, networks: frozenset[str] | None) -> bool:
        """Whether a reader of `networks` sees this item (None: a reader of every network)."""
        return reaches(self.networks, networks)


def reaches(targets: list[str] | None, networks: frozenset[str] | None) -> bool:
    """Whether a piece for `targets` (None: everyone) reaches a reader of `networks` (None: of every network)."""
    return networks is None or targets is None or not networks.isdisjoint(targets)


class Article(Model):
    """A piece of a sectioned issue: a heading and its text."""

    title: Line
    body: Markdown
    links: list[Link] = []
    networks: list[NetworkId] | None = Field(None, min_length=1)
    image: Image | None = None

    def for_networks(self, networks: frozenset[str] | None) -> bool:
        return reaches(self.networks, networks)


class IssueSection(Model):
    """One section of an issue: a standing `section` of newsletter.yaml, or one with a `title` of its own."""

    section: SectionId | None = None
    title: Line | None = None  # for a standing section: printed instead of newsletter.yaml's title
    intro: Markdown | None = None  # printed under the heading, before the articles
    articles: list[Article] = []
    items: list[Item] = []

    @model_validator(mode="after")
    def _named_and_filled(self) -> IssueSection:
        if self.section is None and self.title is None:
            raise PydanticCustomError("section", "name the section: `section: <id from newsletter.yaml>` or `title:`")
        if not self.articles and not self.items:
            raise PydanticCustomError("section", "an empty section: give it `articles` or `items`")
        return self


class Meeting(Model):
    network: NetworkId
    title: Line
    date: dt.date
    start: Time | None = None
    end: Time | None = None
    location: Line | None = None
    contact: ContactId | None = None

    @property
    def key(self) -> tuple:
        return (self.date, self.start or "", self.network, self.title)


class Resource(Model):
    title: Line
    publisher: Line
    published: dt.date | None = None
    url: Url


class Issue(Model):
    number: int = Field(ge=1)
    date: dt.date
    subject: Line | None = None
    preheader: Line | None = None
    intro: Markdown | None = None
    networks: list[NetworkId] | None = Field(None, min_length=1)
    items: list[Item] = []
    sections: list[IssueSection] = []
    meetings: list[Meeting] = []
    resources: list[Resource] = []

    @model_validator(mode="after")
    def _has_content(self) -> Issue:
        if not self.items and not self.sections:
            raise PydanticCustomError("empty", "an issue needs at least one item, or sections with articles")
        return self


# minutes of a network meeting (content/minutes/YYYY-MM-DD-<network>.yaml) --------------------


class Action(Model):
    """What the minutes record as "ACTION: Douglas Sinclair to share the East Sussex protocol"."""

    owner: Line
    action: Markdown
    due: dt.date | None = None
    done: bool = False

    def open_on(self, date: dt.date) -> bool:
        """Whether an issue of `date` still lists it: not done, and not past its due date."""
        return not self.done and (self.due is None or self.due >= date)


class Minutes(Model):
    network: NetworkId
    date: dt.date
    title: Line  # "QA Leads Network meeting"
    actions: list[Action] = []
