"""Minutes of a network meeting, as plain text, read for their actions: content/minutes/<date>-<network>.yaml."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from . import yamlout
from .dates import DAY_MONTH, find_date
from .lines import Line, clean, plain

NAME = r"(?:[A-Z][\w'’.-]*)(?:\s+(?:and|&|of|the|de|van|von|[A-Z][\w'’.-]*)){0,4}(?<![a-z]\sand)(?<!\s&)"
GROUP = (
    r"(?:all\s+(?:members|authorities|las|colleagues|networks?)|colleagues|members|everyone|each\s+(?:la|authority))"
)
# "will", "agreed to"…; a bare "to" only before a verb ("to share", not "to Stuart" or "to be sent")
DOES = (
    r"(?:(?i:will|shall|is\s+to|are\s+to|agreed\s+to|plans?\s+to|has\s+agreed\s+to|offered\s+to|would)"
    r"|(?i:to)(?!\s+be\b)(?=\s+[a-z]))"
)
OWNER_FIRST = re.compile(rf"^(?P<owner>{NAME}|(?i:{GROUP}))\s+{DOES}\s+(?P<what>.+)$")
# an unmarked line reads as an action only with a firm verb: "Stuart will raise…", not "Responding to…" or "We will…"
PROMISE = re.compile(
    rf"^(?!(?:We|I|They|It|This|That|There|These|Those)\b)(?P<owner>{NAME})\s+(?i:will|shall|agreed\s+to|offered\s+to)\s+\S"
)
OWNER_LATER = re.compile(rf"(?:^|[–—;:]\s*|\s-\s)(?P<owner>{NAME}|(?i:{GROUP}))\s+{DOES}\s+\S")
NUMBERING = re.compile(r"^\d+(?:\.\d+)*\.?\s+")
ACTION = re.compile(r"^(?:(?i:actions?)\s*[:–—-]|ACTIONS?\b|(?i:action\s+points?)\s*[:–—-])\s*(?P<rest>.*)$")
DUE = re.compile(r"\b(?:by|before|no\s+later\s+than|until|due)\s+(?P<when>[^,;()]+)", re.IGNORECASE)
DATE_LIKE = re.compile(
    r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)[a-z]*\b"
    r"|\b(?:end|next|week|month|meeting|tomorrow|tba|tbc)\b",
    re.IGNORECASE,
)
NOBODY = "All members"  # who an action belongs to when the minutes name no one: the editor confirms


@dataclass
class Action:
    """One action as FORMAT.md has it, with the line it came from and what the editor should confirm."""

    owner: str
    action: str
    line: int
    due: dt.date | None = None
    doubts: list[str] = field(default_factory=list)


@dataclass
class Doubt:
    """A line that may hold an action the importer did not take: the editor decides."""

    line: int
    text: str
    reason: str
    maybe: Action | None = None


@dataclass
class Minutes:
    network: str
    date: dt.date
    title: str
    actions: list[Action]
    doubts: list[Doubt]


def read_minutes(text: str, *, network: str, network_name: str, date: dt.date) -> Minutes:
    """Every action in minutes `text`, and the lines that may be actions, for the meeting of `date`."""
    lines = clean(text)
    title, doubts = _title(lines, network_name=network_name, date=date)
    actions: list[Action] = []
    taken: set[int] = set()
    for i, line in enumerate(lines):
        if line.number in taken:
            continue
        match = ACTION.match(NUMBERING.sub("", line.body or line.text))
        if match is None:
            continue
        taken.add(line.number)
        rest = match["rest"].strip()
        if rest:
            actions.append(parse_action(rest, line=line.number, meeting=date))
            continue
        for entry in _listed(lines[i + 1 :]):
            taken.add(entry.number)
            actions.append(parse_action(entry.body, line=entry.number, meeting=date))
    doubts.extend(_maybe_actions(lines, taken, date))
    return Minutes(network, date, title, actions, doubts)


def _title(lines: list[Line], *, network_name: str, date: dt.date) -> tuple[str, list[Doubt]]:
    """The heading of the minutes without its date (or "<network> meeting"), and a doubt if its date differs."""
    first = next((line for line in lines if not line.blank), None)
    default = f"{network_name} meeting"
    if (
        first is None
        or first.bullet
        or NUMBERING.match(first.text)
        or ACTION.match(first.text)
        or len(first.text) > 150
    ):
        return default, []
    found = find_date(first.text, near=date)
    heading = first.text
    doubts = []
    if found is not None:
        heading = (heading[: found.span[0]] + heading[found.span[1] :]).strip(" –—-:,|")
        if found.date != date:
            doubts.append(Doubt(first.number, first.text, f"the heading says {found.date}, not {date} (--date)"))
    return heading or default, doubts


def _listed(following: list[Line]) -> list[Line]:
    """The entries under an ACTIONS heading: its bullets of one kind, or its lines up to a blank one."""
    entries: list[Line] = []
    for line in following:
        if line.blank:
            if entries and entries[0].bullet is None:
                break
            continue
        if entries and not _continues(entries[0], line):
            break
        entries.append(line)
    return [e for e in entries if not ACTION.match(e.body or e.text)]


def _continues(first: Line, line: Line) -> bool:
    """Whether `line` belongs to the list `first` opens: bullets of its kind, its numbering, or plain lines."""
    if first.bullet is None:
        return line.bullet is None and not NUMBERING.match(line.text)
    if first.bullet == "-":
        return line.bullet == "-"
    # a list numbered from 1 at one indent, not the minutes' own "10. AOB"
    return line.bullet not in (None, "-") and first.bullet == "1." and first.indent == line.indent


def parse_action(text: str, *, line: int, meeting: dt.date) -> Action:
    """Owner, action and due date of one action's text ("Douglas Sinclair will share the protocol by 24 March")."""
    text = text.strip().rstrip(".").strip()
    doubts: list[str] = []
    match = OWNER_FIRST.match(text)
    if match:
        owner, what = match["owner"], match["what"].strip()
        owner = owner[0].upper() + owner[1:]
    elif later := OWNER_LATER.search(text):
        owner, what = later["owner"][0].upper() + later["owner"][1:], text
        doubts.append(f"the owner, {owner}, is named inside the text: confirm")
    else:
        owner, what = NOBODY, text
        doubts.append(f"no owner named: set to '{NOBODY}', confirm or change")
    due, due_doubt = _due(what, meeting)
    if due_doubt:
        doubts.append(due_doubt)
    return Action(owner, what, line, due, doubts)


def _due(text: str, meeting: dt.date) -> tuple[dt.date | None, str | None]:
    for match in DUE.finditer(text):
        when = match["when"].strip()
        if not DATE_LIKE.search(when):
            continue  # "by email", "by each authority": not a date
        found = find_date(when, near=meeting)
        if found is None:
            return None, f"a due date I could not read: '{match.group().strip()}'"
        if found.date < meeting:
            return None, f"'{match.group().strip()}' reads as {found.date}, before the meeting"
        return found.date, None
    return None, None


def _maybe_actions(lines: list[Line], taken: set[int], meeting: dt.date) -> list[Doubt]:
    """Lines not taken that read like one: "Stuart will raise the proposal", or an 'action' word without an owner."""
    doubts = []
    for line in lines:
        if line.number in taken or line.blank:
            continue
        body = NUMBERING.sub("", line.body)
        if PROMISE.match(body) and not DAY_MONTH.match(body):
            maybe = parse_action(body, line=line.number, meeting=meeting)
            reason = "a bullet that may be an action" if line.bullet else "a line that may be an action"
            doubts.append(Doubt(line.number, line.text, reason, maybe))
        elif re.search(r"\baction(s|ed)?\b", plain(line.text)) and not re.search(
            r"\baction plans?\b", plain(line.text)
        ):
            doubts.append(Doubt(line.number, line.text, "an 'action' word without a clear owner"))
    return doubts


def to_yaml(minutes: Minutes, *, source: str) -> str:
    """The minutes file of FORMAT.md, each action after a comment naming its line; doubts as comments."""
    doc = yamlout.CommentedMap()
    doc["network"] = minutes.network
    doc["date"] = minutes.date
    doc["title"] = yamlout.text(minutes.title)
    actions = yamlout.CommentedSeq()
    for action in minutes.actions:
        actions.append(_entry(action))
        note = f"line {action.line}" + "".join(f"; check: {d}" for d in action.doubts)
        actions.yaml_set_comment_before_after_key(len(actions) - 1, before=note, indent=2)
    doc["actions"] = actions
    doc.yaml_set_start_comment(
        f"Imported from {source} by `newsletter import minutes`: confirm each action, then delete these notes."
    )
    trailer = []
    for doubt in minutes.doubts:
        trailer.append(f"line {doubt.line}: {doubt.reason}: {doubt.text}")
        if doubt.maybe is not None:
            trailer.extend(row for row in yamlout.dump([_entry(doubt.maybe)]).splitlines())
    return yamlout.dump(
        doc, trailer=(["Lines that may hold actions (uncomment to add one):", *trailer] if trailer else None)
    )


def _entry(action: Action) -> yamlout.CommentedMap:
    entry = yamlout.CommentedMap()
    entry["owner"] = yamlout.text(action.owner)
    entry["action"] = yamlout.text(action.action)
    if action.due is not None:
        entry["due"] = action.due
    entry["done"] = False
    return entry
