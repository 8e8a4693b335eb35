"""Lines of plain text as markdown: paragraphs, bullets and numbered lists, links kept as links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .lines import URL, Line, paragraphs

_U = r"(?:https?://|www\.)[^\s<>()]*[^\s<>().,;:!?'\"’”]"
URL_ONLY = re.compile(rf"^<?(?P<url>{_U})>?[.,]?$", re.IGNORECASE)
LABELLED_LINE = re.compile(
    rf"^(?P<label>[^()<>]{{2,150}}?)\s*(?:\(\s*<?(?P<u1>{_U})>?\s*\)|<(?P<u2>{_U})>|(?::|–|—|\s-)\s*<?(?P<u3>{_U})>?)[.,]?$",
    re.IGNORECASE,
)
LABELLED = re.compile(
    rf"(?P<label>[^.;:!?()<>\[\]]{{2,120}}?)\s*(?:\(\s*<?(?P<u1>{_U})>?\s*\)|<(?P<u2>{_U})>)", re.IGNORECASE
)
BARE = re.compile(r"(?<![(<\[])(?P<url>https?://[^\s<>()]*[^\s<>().,;:!?'\"’”])", re.IGNORECASE)


@dataclass(frozen=True)
class Link:
    text: str
    url: str


def to_markdown(lines: list[Line]) -> tuple[str, list[Link]]:
    """`lines` as markdown, and the links that stood on lines of their own (read-more links)."""
    blocks: list[str] = []
    links: list[Link] = []
    for para in paragraphs(lines):
        groups: list[tuple[str, list[str]]] = []
        for line in para:
            link = link_line(line.body if line.bullet else line.text)
            if link is not None and not link.text and groups and groups[-1][0] == "p" and _short(groups[-1][1][-1]):
                link = Link(groups[-1][1].pop().rstrip(":").strip(), link.url)  # "Read the plan here:" then its URL
            if link is not None:
                links.append(Link(link.text or readable(link.url), _absolute(link.url)))
                continue
            kind, text = (
                ("list", f"{line.bullet} {inline(line.body)}") if line.bullet else ("p", escape(inline(line.text)))
            )
            if groups and groups[-1][0] == kind:
                groups[-1][1].append(text)
            else:
                groups.append((kind, [text]))
        blocks.extend("\n".join(texts) for _, texts in groups if texts)
    return "\n\n".join(blocks), links


def _short(text: str) -> bool:
    return len(text) <= 100 and not URL.search(text)


def link_line(text: str) -> Link | None:
    """A line that is only a link: a URL (text ""), or "text (url)", "text <url>", "text: url"."""
    if match := URL_ONLY.match(text):
        return Link("", match["url"])
    if match := LABELLED_LINE.match(text):
        return Link(match["label"].strip(" -–:"), match["u1"] or match["u2"] or match["u3"])
    return None


def inline(text: str) -> str:
    """ "text (url)" and "text <url>" as [text](url); a bare http URL as <url>, so it stays a link."""
    text = LABELLED.sub(lambda m: f"[{m['label'].strip()}]({_absolute(m['u1'] or m['u2'])})", text)
    return BARE.sub(lambda m: f"<{m['url']}>", text)


def escape(text: str) -> str:
    """A plain line that markdown would read as a heading, quote or list, kept as text."""
    if re.match(r"^(#{1,6}\s|>|[-+*]\s|\d+[.)]\s|={3,}$|-{3,}$)", text):
        return "\\" + text
    return text


def readable(url: str) -> str:
    """Words for a link whose text gives none: the page's name and its site ("plan 2026-27 on example.org")."""
    parts = urlsplit(_absolute(url))
    host = parts.netloc.removeprefix("www.")
    page = parts.path.rstrip("/").rsplit("/", 1)[-1]
    page = re.sub(r"\.(html?|php|aspx?)$", "", page)
    words = re.sub(r"[-_+]+|%20", " ", page).strip()
    return f"{words} on {host}" if words else host


def _absolute(url: str) -> str:
    return url if re.match(r"https?://", url, re.IGNORECASE) else "https://" + url
