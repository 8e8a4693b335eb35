"""A plain-text weekly update (an old system's export, or pasted from an email) read as an issue file.

Each "Programme:/Update:/Action Required:" block is an item, "Reminders from previous weeks" items get
`remind_until`, meeting lines become meetings, "Tools & Templates" lines resources and "Contact Details"
contacts for newsletter.yaml. A line it cannot place is reported and kept in the file as a comment.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from . import yamlout
from .contacts import Contact, new_ids, read_contacts
from .dates import find_date
from .lines import Line, clean, heading, paragraphs
from .markdown import to_markdown
from .meetings import Named, read_meeting
from .resources import read_resource

HEADINGS = {
    "programme": ("programme", "program", "programme title", "headline"),
    "update": ("update", "summary", "the update"),
    "action": ("action required", "actions required", "action needed", "action", "actions", "what to do"),
    "reminders": (
        "reminders from previous weeks",
        "reminders from previous updates",
        "reminders from previous issues",
        "reminders from last week",
        "reminders from earlier weeks",
        "reminders",
        "reminder",
    ),
    "resources": ("tools & templates", "tools and templates", "tools & resources", "tools and resources", "resources"),
    "contacts": ("contact details", "contacts", "key contacts", "who to contact"),
}
CANONICAL = frozenset(["programme", "update", "action required"])
HEADER = re.compile(
    r"\b(?:update|issue|bulletin|newsletter|edition)\s*(?:no\.?|number|#)?\s*(?P<number>\d{1,5})\b", re.IGNORECASE
)
REMIND_DAYS = 14  # a reminder with no date of its own repeats for two weeks
DEADLINE = re.compile(r"\b(?:by|until|before|closing date|deadline|closes|ends)\b", re.IGNORECASE)


@dataclass
class Note:
    """A line the importer could not place (kept as a comment), or a remark the editor should read."""

    line: int
    text: str
    reason: str


@dataclass
class Draft:
    """An item as the text gives it: its Programme, Update and Action Required lines."""

    line: int
    reminder: bool
    title: list[Line] = field(default_factory=list)
    update: list[Line] = field(default_factory=list)
    action: list[Line] = field(default_factory=list)
    headings: list[Line] = field(default_factory=list)  # headings in other words than Programme/Update/Action Required


@dataclass
class Read:
    """What the text holds, before it is written out."""

    number: int | None = None
    date: dt.date | None = None
    header: list[Line] = field(default_factory=list)  # the lines that gave them
    preamble: list[Line] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)
    marks: dict[str, Line] = field(default_factory=dict)  # the section headings met: reminders, resources, contacts
    resources: list[Line] = field(default_factory=list)
    contacts: list[Line] = field(default_factory=list)
    loose: list[Line] = field(default_factory=list)  # lines outside any block


def read(text: str) -> Read:
    """The text's blocks, by its headings."""
    found = Read()
    state, draft, reminders = "preamble", None, False
    for line in clean(text):
        if state == "preamble" and _header(line, found):
            continue
        head = _heading(line)
        if head is not None:
            kind, name, rest = head
            if kind in ("reminders", "resources", "contacts"):
                found.marks[kind] = line
                reminders = reminders or kind == "reminders"
                state, draft = (kind if kind != "reminders" else "loose"), None
                continue
            if kind == "programme" or draft is None:
                draft = Draft(line.number, reminders)
                found.drafts.append(draft)
            state = kind
            if name not in CANONICAL:
                draft.headings.append(line)
            if rest:
                getattr(draft, "title" if kind == "programme" else kind).append(Line(line.number, rest, body=rest))
            continue
        if draft is not None and state == "programme":
            if line.blank and draft.title:
                state = "update"  # a title then a paragraph with no "Update:" heading
            elif not line.blank:
                draft.title.append(line)
        elif draft is not None and state in ("update", "action"):
            getattr(draft, state).append(line)
        elif state in ("resources", "contacts"):
            getattr(found, state).append(line)
        elif state == "preamble":
            found.preamble.append(line)
        elif not line.blank:
            found.loose.append(line)
    return found


def _heading(line: Line) -> tuple[str, str, str] | None:
    """(kind, the heading's words, the text after it) if `line` is one of HEADINGS."""
    for kind, names in HEADINGS.items():
        if (head := heading(line, names)) is not None:
            return kind, *head
    return None


def _header(line: Line, found: Read) -> bool:
    """Whether `line` is the update's header ("UPDATE NO 117 13 November 2026", a date line); notes what it gives."""
    if line.blank or len(line.text) > 80 or line.bullet:
        return False
    number = HEADER.search(line.text)
    date = find_date(line.text)
    words_left = line.text
    for match in (number, date):
        if match is not None:
            span = match.span() if isinstance(match, re.Match) else match.span
            words_left = words_left.replace(line.text[span[0] : span[1]], " ")
    if number is None and (date is None or re.search(r"[a-z]{3,}", re.sub(r"(?i)\b\w+day\b", "", words_left))):
        return False
    if number is not None and date is None and re.search(r"[a-z]{4,}", words_left):
        return False  # "Update for issue 3 of the plan" is a sentence, not a header
    if number is not None and found.number not in (None, int(number["number"])):
        return False
    if date is not None and found.date not in (None, date.date):
        return False
    found.number = int(number["number"]) if number is not None else found.number
    found.date = date.date if date is not None else found.date
    found.header.append(line)
    return True


@dataclass
class Imported:
    """The issue file to write, the contacts to add to newsletter.yaml, and what the editor should read."""

    date: dt.date
    number: int
    yaml: str
    contacts: list[yamlout.CommentedMap]
    notes: list[Note]


@dataclass
class _Out:
    """The issue being built, and the comments that go at the end of its file."""

    doc: yamlout.CommentedMap
    notes: list[Note]
    trailer: list[str] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)

    def unplaced(self, line: Line, reason: str) -> None:
        self.notes.append(Note(line.number, line.text, reason))
        self.loose.append(f"line {line.number}: {line.text}  ({reason})")


def import_text(
    text: str,
    *,
    source: str,
    networks: list[Named],
    contacts: list[Named],
    existing: dict[str, str],
    add_contacts: bool = False,
    date: dt.date | None = None,
    number: int | None = None,
) -> Imported:
    """An issue file from a plain-text update; `existing` maps known contacts' emails and names to their ids.

    A meeting's contact may be one of the text's new contacts only if they are being added (`add_contacts`).
    The text's own date and number win over `date` and `number`; ValueError names what neither gives.
    """
    found = read(text)
    date, number = _date_number(found, date, number)
    out = _Out(yamlout.CommentedMap(), [])
    doc = out.doc
    doc.yaml_set_start_comment(
        f"Imported from {source} by `newsletter import text`: its Programme / Update / Action Required blocks are\n"
        "the items below. Check it against the text, then delete these notes."
    )
    doc["number"] = number
    doc["date"] = date
    if found.header:
        where = ", ".join(str(line.number) for line in found.header)
        said = " | ".join(dict.fromkeys(line.text for line in found.header))
        doc.yaml_add_eol_comment(f"line {where}: {said}", "number")
    _intro(found.preamble, out)
    new, known = _contacts(found, out, existing)
    people = contacts + ([Named(ident, c.name) for ident, c in new] if add_contacts else [])
    meetings = _items(found, out, date=date, networks=networks, contacts=people)
    if meetings:
        doc["meetings"] = meetings
    _resources(found, out, date)
    for line in found.loose:
        out.unplaced(line, "outside any Programme block")
    _contact_trailer(found, out, new, known)
    if out.loose:
        head = "Lines the importer could not place, kept here (move each where it belongs, or delete it):"
        out.trailer[:0] = [head, *out.loose, ""]
    entries = [c.as_yaml(ident) for ident, c in new]
    return Imported(date, number, yamlout.dump(doc, trailer=out.trailer), entries, out.notes)


def _date_number(found: Read, date: dt.date | None, number: int | None) -> tuple[dt.date, int]:
    date, number = found.date or date, found.number or number
    if date is None or number is None:
        missing = [flag for flag, value in (("--date YYYY-MM-DD", date), ("--number N", number)) if value is None]
        raise ValueError(
            f"the text gives no issue {' or '.join(m[2:].split()[0] for m in missing)}: give {' and '.join(missing)}"
        )
    return date, number


def _intro(preamble: list[Line], out: _Out) -> None:
    """The lines before the first block as the intro, less a lone short line (a heading, a caption) or a teaser."""
    kept: list[Line] = []
    paras = paragraphs(preamble)
    for i, para in enumerate(paras):
        joined = " ".join(line.text for line in para)
        teaser = re.sub(r"\s*(\[…\]|\[\.\.\.\]|…|\.\.\.)$", "", joined)
        later = " ".join(line.text for p in paras[i + 1 :] for line in p)
        if teaser != joined and len(teaser) > 40 and teaser[-40:] in later:
            out.unplaced(para[0], "a summary repeating the text after it")
        elif len(para) == 1 and len(joined.split()) <= 8 and not re.search(r"[.!?:]$", joined):
            out.unplaced(para[0], "a lone heading or picture caption (an image's alt text?)")
        else:
            kept.extend([*para, Line(0, "")])
    if kept:
        out.doc["intro"] = yamlout.block(to_markdown(kept)[0])


def _items(
    found: Read, out: _Out, *, date: dt.date, networks: list[Named], contacts: list[Named]
) -> yamlout.CommentedSeq:
    """The items, in order, with `remind_until` on reminders; returns the meetings taken out of their lines."""
    items = yamlout.CommentedSeq()
    meetings = yamlout.CommentedSeq()
    first_reminder = True
    for draft in found.drafts:
        title = " ".join(line.text for line in draft.title)
        for part in ("update", "action"):
            kept = []
            for line in getattr(draft, part):
                meeting = (
                    None if line.blank else read_meeting(line.body, networks=networks, contacts=contacts, issue=date)
                )
                if meeting is None:
                    kept.append(line)
                    continue
                meetings.append(_meeting(meeting))
                meetings.yaml_set_comment_before_after_key(
                    len(meetings) - 1, before=f"line {line.number}: {line.text}", indent=2
                )
            setattr(draft, part, kept)
        item = _item(draft, title, out, date=date)
        if item is None:
            continue
        items.append(item)
        before = [f"line {h.number}: {h.text}" for h in draft.headings]
        if draft.reminder and first_reminder and "reminders" in found.marks:
            mark = found.marks["reminders"]
            before.insert(0, f"{mark.text} (line {mark.number})")
            first_reminder = False
        if before:
            items.yaml_set_comment_before_after_key(len(items) - 1, before="\n".join(before), indent=2)
    if items:
        out.doc["items"] = items
    return meetings


def _item(draft: Draft, title: str, out: _Out, *, date: dt.date) -> yamlout.CommentedMap | None:
    update, links = to_markdown(draft.update)
    action, more = to_markdown(draft.action)
    heading = Line(draft.line, f"{title or '(no title)'} (Programme:)")
    if not update and not action and not links + more:
        reason = "its lines became the meetings" if title else "an empty block"
        out.unplaced(heading, reason)
        return None
    item = yamlout.CommentedMap()
    if title:
        item["programme"] = yamlout.text(title)
    else:
        out.notes.append(Note(draft.line, "", "an item without a Programme: line (add `programme:`)"))
    if not update and action:
        update, action = action, ""
        out.notes.append(Note(draft.line, title, "no Update: text, so its Action Required text is the update"))
    if update:
        item["update"] = yamlout.block(update)
    if action:
        item["action"] = yamlout.block(action)
    if links + more:
        item["links"] = [yamlout.CommentedMap(text=yamlout.text(k.text), url=k.url) for k in links + more]
    if draft.reminder:
        until = _remind_until(draft, date)
        item["remind_until"] = until or date + dt.timedelta(days=REMIND_DAYS)
        why = "the date its text gives" if until else f"the text gives no date: the issue date + {REMIND_DAYS} days"
        item.yaml_add_eol_comment(why, "remind_until")
    return item


def _remind_until(draft: Draft, date: dt.date) -> dt.date | None:
    for line in draft.update + draft.action:
        deadline = DEADLINE.search(line.text)
        found = find_date(line.text[deadline.end() :], near=date) if deadline else None
        if found is not None and found.date >= date:
            return found.date
    return None


def _meeting(meeting: dict) -> yamlout.CommentedMap:
    entry = yamlout.CommentedMap()
    for key, value in meeting.items():
        entry[key] = (
            yamlout.DoubleQuotedScalarString(value)
            if key in ("start", "end")
            else (yamlout.text(value) if isinstance(value, str) else value)
        )
    return entry


def _resources(found: Read, out: _Out, date: dt.date) -> None:
    """Complete resources under `resources:`; one without a URL or publisher as a commented entry to finish."""
    done = yamlout.CommentedSeq()
    unfinished: list[str] = []
    entries: list[tuple[Line, dict]] = []
    for line in found.resources:
        if line.blank:
            continue
        resource = read_resource(line.body or line.text, near=date)
        if set(resource) == {"url"} and entries and "url" not in entries[-1][1]:
            entries[-1][1]["url"] = resource["url"]  # a URL on the line after its resource
            continue
        entries.append((line, resource))
    for line, resource in entries:
        entry = yamlout.CommentedMap({k: yamlout.text(v) if isinstance(v, str) else v for k, v in resource.items()})
        if {"title", "publisher", "url"} <= set(resource):
            done.append(entry)
            done.yaml_set_comment_before_after_key(len(done) - 1, before=f"line {line.number}: {line.text}", indent=2)
            continue
        missing = " and ".join(k for k in ("publisher", "url") if k not in resource)
        out.notes.append(Note(line.number, line.text, f"a resource without a {missing}: kept as a comment"))
        unfinished.append(f"line {line.number}: {line.text}  (no {missing})")
        unfinished.extend(yamlout.dump([entry]).splitlines())
    mark = found.marks.get("resources")
    if done:
        out.doc["resources"] = done
        if mark is not None:
            out.doc.yaml_set_comment_before_after_key("resources", before=f"{mark.text} (line {mark.number})")
    if unfinished:
        title = f"{mark.text} (line {mark.number})" if mark else "Resources"
        out.trailer.extend(
            [
                f"{title}: not yet resources, as each needs a url and a publisher. Add them and",
                "move the entry under resources:",
                *unfinished,
                "",
            ]
        )


def _contacts(
    found: Read, out: _Out, existing: dict[str, str]
) -> tuple[list[tuple[str, Contact]], list[tuple[str, Contact]]]:
    """(new, already known) contacts of the Contact Details block, each with its id."""
    contacts, unplaced = read_contacts(found.contacts)
    for line in unplaced:
        out.unplaced(line, "in Contact Details, but not part of a contact")
    fresh, known = new_ids(contacts, existing)
    return [(fresh[i], c) for i, c in enumerate(contacts) if i in fresh], [
        (known[i], c) for i, c in enumerate(contacts) if i in known
    ]


def _contact_trailer(found: Read, out: _Out, new: list[tuple[str, Contact]], known: list[tuple[str, Contact]]) -> None:
    mark = found.marks.get("contacts")
    if mark is None and not new and not known:
        return
    title = f"{mark.text} (line {mark.number})" if mark else "Contact Details"
    rows = [f"{title}: these belong in newsletter.yaml's contacts, not in an issue."]
    for ident, contact in known:
        where = ", ".join(str(line.number) for line in contact.lines)
        rows.append(f"already there as {ident} (line {where}): " + " | ".join(line.text for line in contact.lines))
    if new:
        rows.append("New (`newsletter import text --contacts` adds them), from:")
        rows.extend(f"line {c.lines[0].number}: " + " | ".join(line.text for line in c.lines) for _, c in new)
        rows.extend(yamlout.dump({"contacts": [c.as_yaml(ident) for ident, c in new]}).splitlines())
    out.trailer.extend([*rows, ""])
