"""Plain text made regular: line endings, non-breaking spaces, tabs, bullets and headings, each line numbered."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContentError, Problem

# "•", "·", "-", "*", "o", "▪", "◦", "‣", "–", "➢", "✓" and friends: the bullets Word, Outlook and old systems export
BULLET = re.compile(r"^(?P<mark>[•·\-*o▪◦‣○●■□➢➤►✓✔–—»]|\(?\d{1,2}[.)]|\(?[a-hA-H][.)])\s+(?=\S)")
SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000\t]")  # non-breaking and other odd spaces, tabs
INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")  # zero-width characters and soft hyphens
URL = re.compile(r"(?:https?://|www\.)[^\s<>()]*[^\s<>().,;:!?'\"’”]", re.IGNORECASE)
QUOTES = str.maketrans(
    dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'") | dict.fromkeys("\u201c\u201d\u201e\u2033", '"')
)


@dataclass(frozen=True)
class Line:
    """One line of the input: its number (from 1), its text tidied, and its bullet if it is a list entry."""

    number: int
    text: str  # spaces tidied and stripped; curly quotes kept, as the newsletter prints them
    indent: int = 0
    bullet: str | None = None  # "-" for a bullet, "3." for the numbered entry 3, None for plain text
    body: str = ""  # the text without its bullet

    @property
    def blank(self) -> bool:
        return not self.text

    @property
    def plain(self) -> str:
        """The text for matching: straight quotes, lower case."""
        return plain(self.text)


def plain(text: str) -> str:
    return text.translate(QUOTES).casefold()


def read_text(path: Path) -> str:
    """A text file as str: UTF-8 (with or without BOM), else Windows-1252 as old exports often are."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError([Problem(path, None, "", f"cannot read it: {exc.strerror}")]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def clean(text: str) -> list[Line]:
    """Every line of `text` (CRLF, CR or LF) tidied and numbered, blank ones included."""
    return [tidy(number, raw) for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1)]


def tidy(number: int, raw: str) -> Line:
    spaced = SPACES.sub(" ", INVISIBLE.sub("", raw.replace("\t", "    ")))
    indent = len(spaced) - len(spaced.lstrip(" "))
    text = re.sub(r" {2,}", " ", spaced.strip())
    if not re.search(r"\w", text):  # a rule of dashes or stars: decoration, not words
        return Line(number, text, indent)
    match = BULLET.match(text)
    if match is None or (match.group("mark") == "o" and len(text) < 4):
        return Line(number, text, indent, None, text)
    mark = match.group("mark")
    digits = re.search(r"\d+", mark)
    return Line(number, text, indent, f"{digits.group()}." if digits else "-", text[match.end() :].strip())


def heading(line: Line, names: Iterable[str]) -> tuple[str, str] | None:
    """(name, rest) when `line` opens with one of `names` as a heading ("ACTION REQUIRED:", "Programme: rest")."""
    if line.bullet is not None or line.blank:
        return None
    text = plain(line.text).strip("*_#= ")
    for name in sorted(names, key=len, reverse=True):
        if text == name or text == name + ":":
            return name, ""
        if text.startswith((name + ":", name + " -", name + " –")):
            rest = line.text.strip("*_#= ")[len(name) + 1 :].lstrip(":-– ").strip()
            return name, rest
    return None


def paragraphs(lines: list[Line]) -> list[list[Line]]:
    """`lines` split at blank lines, leading and trailing blanks dropped."""
    out: list[list[Line]] = [[]]
    for line in lines:
        if line.blank:
            if out[-1]:
                out.append([])
        else:
            out[-1].append(line)
    return [p for p in out if p]
