"""Dates and times as offices write them: "Friday 4 December 2026", "24th March", "13/11/2026", "2pm – 5pm"."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
MONTHS["sept"] = 9
_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\.?,?\s+)?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(?P<year>\d{4}))?"
DAY_MONTH = re.compile(rf"\b{_WEEKDAY}(?:the\s+)?{_DAY}(?:\s+of)?\s+{_MONTH}\b{_YEAR}", re.IGNORECASE)
MONTH_DAY = re.compile(rf"\b{_WEEKDAY}{_MONTH}\s+{_DAY}\b{_YEAR}", re.IGNORECASE)
NUMERIC = re.compile(r"\b(?P<day>\d{1,2})[/.](?P<month>\d{1,2})[/.](?P<year>\d{4}|\d{2})\b")
ISO = re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b")
END_OF = re.compile(rf"\bend\s+of\s+{_MONTH}\b{_YEAR}", re.IGNORECASE)
TIME = r"(?P<{n}h>\d{{1,2}})(?:[.:](?P<{n}m>[0-5]\d))?\s*(?P<{n}p>[ap]\.?m\.?\b)?"
TIMES = re.compile(
    r"(?<![\d/.:])" + TIME.format(n="a") + r"(?:\s*(?:-|–|—|to|until)\s*" + TIME.format(n="b") + r")?(?![\d/])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Found:
    """A date found in a text, and where: `span` lets the caller tell what is left of the text."""

    date: dt.date
    span: tuple[int, int]


def find_date(text: str, *, near: dt.date | None = None) -> Found | None:
    """The first date in `text`; a date without a year takes the first such day on or after `near`."""
    best: Found | None = None
    for pattern in (ISO, NUMERIC, DAY_MONTH, MONTH_DAY, END_OF):
        for match in pattern.finditer(text):
            found = _date(match, near=near, end_of=pattern is END_OF)
            if found is not None and (best is None or match.start() < best.span[0]):
                best = Found(found, match.span())
            if found is not None:
                break
    return best


def _date(match: re.Match[str], *, near: dt.date | None, end_of: bool) -> dt.date | None:
    parts = match.groupdict()
    month_text = parts["month"].lower()
    month = int(month_text) if month_text.isdigit() else MONTHS[month_text]
    year_text = parts.get("year")
    if year_text is None and near is None:
        return None
    year = int(year_text) if year_text else near.year  # type: ignore[union-attr]
    year += 2000 if year < 100 else 0
    day = calendar.monthrange(year, month)[1] if end_of else int(parts["day"])
    try:
        found = dt.date(year, month, day)
    except ValueError:
        return None
    if year_text is None and near is not None and found < near:
        found = found.replace(year=year + 1)
    return found


def find_times(text: str) -> tuple[str | None, str | None]:
    """("14:00", "17:00") from "2pm – 5pm"; a number is a time only with am/pm or minutes ("10.30", "14:00")."""
    for match in TIMES.finditer(text):
        start = _hhmm(match["ah"], match["am"], match["ap"] or match["bp"])
        end = _hhmm(match["bh"], match["bm"], match["bp"]) if match["bh"] else None
        if start and not (match["am"] or match["ap"] or (match["bh"] and match["bp"])):
            continue  # "19" alone is not a time
        if start and end and end <= start and not match["ap"]:
            start = _hhmm(match["ah"], match["am"], "am")  # "10 – 1pm" is 10:00 to 13:00
        if start:
            return start, end
    return None, None


def _hhmm(hours: str | None, minutes: str | None, meridiem: str | None) -> str | None:
    if hours is None:
        return None
    h, m = int(hours), int(minutes or 0)
    if meridiem:
        if not 1 <= h <= 12:
            return None
        h = h % 12 + (12 if meridiem.lower().startswith("p") else 0)
    return f"{h:02d}:{m:02d}" if h < 24 else None
