"""A line announcing a network meeting ("QA Network: Monday 7 December 2026. 2pm – 5pm") read as a meeting."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .dates import find_date, find_times
from .lines import URL, plain

LABEL = re.compile(r"^(?P<label>[^:–—()]{2,80}?)\s*(?::|–|—|\s-\s|\s(?=meets\b|meeting\b|will meet\b))\s*(?P<rest>.+)$")
STOP = frozenset(
    ["the", "network", "networks", "group", "groups", "meeting", "meetings", "board", "forum", "of", "and", "&"]
)
ONLINE = re.compile(r"\b(teams|zoom|google meet|webex|online|virtual)\b", re.IGNORECASE)
PLACE = re.compile(r"\b(?:venue|location|at|held at|in person at)\s*:?\s+(?P<place>[A-Z][^.;,()]{2,80})")


@dataclass(frozen=True)
class Named:
    """A network or contact to match text against: its id and its name."""

    id: str
    name: str


def read_meeting(text: str, *, networks: Iterable[Named], contacts: Iterable[Named], issue: dt.date) -> dict | None:
    """The meeting `text` announces (FORMAT.md's keys), or None if it does not read as one on or after `issue`."""
    match = LABEL.match(text)
    if match is None:
        return None
    network = match_network(match["label"], networks)
    found = find_date(match["rest"], near=issue)
    if network is None or found is None or found.date < issue:
        return None
    rest = match["rest"][: found.span[0]] + " " + match["rest"][found.span[1] :]
    start, end = find_times(rest)
    meeting: dict = {"network": network, "title": match["label"].strip(), "date": found.date}
    if start:
        meeting["start"] = start
    if end:
        meeting["end"] = end
    if location := _location(rest):
        meeting["location"] = location
    if contact := next((c.id for c in contacts if c.name and plain(c.name) in plain(text)), None):
        meeting["contact"] = contact
    return meeting


def _location(text: str) -> str | None:
    if url := URL.search(text):
        return url.group()
    if place := PLACE.search(text):
        return place["place"].strip()
    if online := ONLINE.search(text):
        word = online.group(1)
        return "Online" if word.lower() in ("online", "virtual") else f"Online ({word[0].upper() + word[1:]})"
    return None


def _tokens(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", plain(text))
    return {w.removesuffix("s") if len(w) > 3 else w for w in words if w not in STOP}


def match_network(label: str, networks: Iterable[Named]) -> str | None:
    """The id of the one network `label` names ("QA Network" -> qa-leads), by its name, id or initials."""
    wanted = _tokens(label)
    if not wanted:
        return None
    scores = {}
    for network in networks:
        known = _tokens(network.name) | _tokens(network.id.replace("-", " "))
        words = [w for w in re.findall(r"[A-Za-z]+", network.name) if w.lower() not in STOP]
        known |= {"".join(w[0] for w in words[:n]).lower() for n in range(2, len(words) + 1)}
        if wanted <= known:
            scores[network.id] = len(wanted) / len(known)
    if not scores:
        return None
    best = max(scores.values())
    winners = [n for n, s in scores.items() if s == best]
    return winners[0] if len(winners) == 1 else None
