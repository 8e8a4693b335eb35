"""The "Contact Details" of a plain-text update read as newsletter.yaml contacts, and added to it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import yamlout
from .lines import Line, plain

EMAIL = re.compile(r"(?:mailto:)?(?P<email>[\w.+'-]+@[\w-]+(?:\.[\w-]+)+)", re.IGNORECASE)
PHONE = re.compile(
    r"(?:(?:tel|telephone|phone|mobile|mob|t|m)\.?\s*:?\s*)?(?P<phone>\+?\(?\d[\d ()-]{6,}\d)", re.IGNORECASE
)
LABEL_LEFT = re.compile(
    r"\b(?:e-?mail|tel|telephone|phone|mobile)\s*:?\s*$", re.IGNORECASE
)  # "Email:" once its address is out
ROLE_NAME = re.compile(r"^(?P<role>[^:]{2,120}):\s*(?P<name>[^():,]{2,80}?)\s*(?:\((?P<org>[^()]{2,120})\))?$")
NAME_ROLE = re.compile(
    r"^(?P<name>[^,–—()]{2,80}?)\s*[,–—]\s*(?P<role>[^,–—()]{2,120}?)(?:\s*[,–—(]\s*(?P<org>[^,–—()]{2,120}))?\)?$"
)


@dataclass
class Contact:
    """A contact as read, with the lines it came from."""

    role: str
    name: str
    organisation: str | None = None
    email: str | None = None
    phone: str | None = None
    lines: list[Line] = field(default_factory=list)

    def as_yaml(self, id: str) -> yamlout.CommentedMap:
        entry = yamlout.CommentedMap()
        entry["id"] = id
        for key in ("role", "name", "organisation", "email", "phone"):
            value = getattr(self, key)
            if value:
                entry[key] = yamlout.DoubleQuotedScalarString(value) if key == "phone" else yamlout.text(value)
        return entry


def read_contacts(lines: list[Line]) -> tuple[list[Contact], list[Line]]:
    """The contacts in a "Contact Details" block, and the lines that did not read as part of one."""
    contacts: list[Contact] = []
    unplaced: list[Line] = []
    for line in lines:
        if line.blank:
            continue
        text = line.body or line.text
        email = EMAIL.search(text)
        rest = EMAIL.sub("", text) if email else text
        phone = PHONE.search(rest)
        rest = (PHONE.sub("", rest) if phone else rest).strip(" ,;|–—-:")
        rest = LABEL_LEFT.sub("", rest).strip(" ,;|–—-:")
        who = ROLE_NAME.match(rest) or NAME_ROLE.match(rest) if rest else None
        if who is not None:
            contacts.append(Contact(who["role"].strip(), who["name"].strip(), (who["org"] or "").strip() or None))
        elif rest or not contacts:
            unplaced.append(line)
            continue
        current = contacts[-1]
        current.lines.append(line)
        if email and not current.email:
            current.email = email["email"]
        if phone and not current.phone:
            current.phone = phone["phone"].strip()
    return contacts, unplaced


def slug(text: str) -> str:
    ident = re.sub(r"[^a-z0-9]+", "-", plain(text)).strip("-")
    while len(ident) > 40 and "-" in ident:
        ident = ident.rsplit("-", 1)[0]  # whole words: "convener-of-the-quality-assurance"
    return ident or "contact"


def new_ids(contacts: list[Contact], existing: dict[str, str]) -> tuple[dict[int, str], dict[int, str]]:
    """({index: new id}, {index: id of the same person already in newsletter.yaml}) by email or name.

    `existing` maps each known contact's email and name (lower case) to its id.
    """
    fresh: dict[int, str] = {}
    known: dict[int, str] = {}
    taken = set(existing.values())
    for i, contact in enumerate(contacts):
        same = existing.get(plain(contact.email or "")) or existing.get(plain(contact.name))
        if same:
            known[i] = same
            continue
        base = slug(contact.role)
        ident, n = base, 2
        while ident in taken:
            ident, n = f"{base}-{n}", n + 1
        taken.add(ident)
        fresh[i] = ident
    return fresh, known


def add_to_newsletter(path: Path, entries: list[yamlout.CommentedMap]) -> None:
    """Append `entries` to newsletter.yaml's contacts, keeping its comments, order and quotes (round trip)."""
    document = yamlout.load(path)
    if document.get("contacts") is None:
        document["contacts"] = yamlout.CommentedSeq()
    document["contacts"].extend(entries)
    yamlout.save(path, document)
