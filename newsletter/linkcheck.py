"""Whether an issue's links still lead somewhere: each followed (HEAD, else GET), a few at a time, briefly.

`issue_links` finds every address the issue's email links to, with the field it is written in;
`follow` asks each address once; `check_links` puts the two together as warnings at their fields.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import httpx

from . import markup
from .content import Item, Link
from .errors import Problem
from .folder import Folder, Loc, Source
from .images import local_name

CONCURRENCY = 4  # a few at a time: quick, without hammering one site that most links point at
HEAD_REFUSED = frozenset({405, 501})  # servers that do not answer HEAD; GET asks again
USER_AGENT = "Mozilla/5.0 (compatible; newsletter-linkcheck)"  # some sites refuse clients without one


@dataclass(frozen=True)
class FoundLink:
    """An address as the issue file writes it, and where: the file, line and field a warning points at."""

    url: str
    path: Path
    line: int | None
    field: str


@dataclass(frozen=True)
class Outcome:
    """What asking an address gave: `broken` (4xx, 5xx, no answer, no such host) or `redirect` (where it ends)."""

    url: str
    broken: bool = False
    reason: str = ""
    redirect: str | None = None

    @property
    def fine(self) -> bool:
        return not self.broken and self.redirect is None

    @property
    def message(self) -> str:
        if self.broken:
            return f"link is broken ({self.reason}): {self.url}"
        return f"link is redirected ({self.reason}) to {self.redirect}: link there instead: {self.url}"


@dataclass(frozen=True)
class LinkProblem:
    """A link that is broken or redirected, at its field."""

    link: FoundLink
    outcome: Outcome

    @property
    def broken(self) -> bool:
        return self.outcome.broken

    def problem(self) -> Problem:
        return Problem(self.link.path, self.link.line, self.link.field, self.outcome.message, "warning")


# the links of an issue -----------------------------------------------------------------------


def issue_links(folder: Folder, date: dt.date | None = None) -> list[FoundLink]:
    """Every http(s) address of the issue: links, links in its markdown, meetings held online, remote pictures."""
    issue = folder.issue(date)
    at = _Locator(folder.sources[issue.date])
    at.markdown(("intro",), issue.intro)
    for i, item in enumerate(issue.items):
        _item(at, ("items", i), item)
    for s, section in enumerate(issue.sections):
        at.markdown(("sections", s, "intro"), section.intro)
        for a, article in enumerate(section.articles):
            loc = ("sections", s, "articles", a)
            at.markdown((*loc, "body"), article.body)
            at.links(loc, article.links)
            if article.image and local_name(article.image.src) is None:
                at.add((*loc, "image", "src"), article.image.src)
        for i, item in enumerate(section.items):
            _item(at, ("sections", s, "items", i), item)
    for m, meeting in enumerate(issue.meetings):
        if meeting.location and re.match(r"https?://", meeting.location, flags=re.IGNORECASE):
            at.add(("meetings", m, "location"), meeting.location)
    for r, resource in enumerate(issue.resources):
        at.add(("resources", r, "url"), resource.url)
    return at.found


def _item(at: _Locator, loc: Loc, item: Item) -> None:
    at.markdown((*loc, "update"), item.update)
    at.markdown((*loc, "action"), item.action)
    at.links(loc, item.links)
    if item.image and local_name(item.image.src) is None:
        at.add((*loc, "image", "src"), item.image.src)


class _Locator:
    """Collects the addresses with their fields; one in a `|` block points at its own line of the text."""

    def __init__(self, source: Source):
        self.source = source
        self.found: list[FoundLink] = []
        self._text: list[str] | None = None

    def add(self, loc: Loc, url: str, *, offset: int | None = None, line_of: Loc | None = None) -> None:
        """`offset`: the line of the link within a markdown field; `line_of`: the key whose line to point at."""
        problem = self.source.problem(loc, "")
        line = self.source.line(line_of) if line_of else problem.line
        if offset is not None and line and self._starts_block(line):
            line += 1 + offset
        self.found.append(FoundLink(url, problem.path, line, problem.field))

    def links(self, loc: Loc, links: Iterable[Link]) -> None:
        for k, link in enumerate(links):
            self.add((*loc, "links", k), link.url, line_of=(*loc, "links", k, "url"))

    def markdown(self, loc: Loc, text: str | None) -> None:
        for link in markup.links(text):
            url = link.url if "://" in link.url else f"https://{link.url}"  # a bare www.example.org
            if url.lower().startswith(("http://", "https://")):
                self.add(loc, url, offset=link.line)

    def _starts_block(self, line: int) -> bool:
        if self._text is None:
            self._text = self.source.path.read_text(encoding="utf-8-sig").splitlines()
        text = self._text[line - 1] if line <= len(self._text) else ""
        return bool(re.search(r":\s*\|[-+0-9]*\s*(#.*)?$", text))


# asking each address -------------------------------------------------------------------------


async def follow(
    urls: Iterable[str],
    *,
    seconds: float,
    concurrency: int = CONCURRENCY,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Outcome]:
    """Each distinct address asked once, `concurrency` at a time, each given `seconds` in all to answer."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    async with httpx.AsyncClient(
        follow_redirects=True, timeout=seconds, headers=headers, transport=transport
    ) as client:

        async def one(url: str) -> Outcome:
            async with gate:
                return await _ask(client, url, seconds)

        distinct = list(dict.fromkeys(urls))
        outcomes = await asyncio.gather(*(one(url) for url in distinct))
    return dict(zip(distinct, outcomes, strict=True))


async def _ask(client: httpx.AsyncClient, url: str, seconds: float) -> Outcome:
    try:
        async with asyncio.timeout(seconds):
            response = await _head_then_get(client, url)
    except TimeoutError:
        return Outcome(url, broken=True, reason=f"no answer within {seconds:g} s")
    except httpx.TimeoutException:
        return Outcome(url, broken=True, reason=f"no answer within {seconds:g} s")
    except httpx.TooManyRedirects:
        return Outcome(url, broken=True, reason="too many redirects")
    except httpx.ConnectError as exc:
        return Outcome(url, broken=True, reason=_connect_reason(exc))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Outcome(url, broken=True, reason=str(exc) or type(exc).__name__)
    status = _status(response.status_code)
    if response.status_code >= 400:
        after = f", after a redirect to {response.url}" if response.history else ""
        return Outcome(url, broken=True, reason=status + after)
    if response.history:
        return Outcome(url, reason=_status(response.history[0].status_code), redirect=str(response.url))
    return Outcome(url)


async def _head_then_get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """HEAD; GET where the server refuses HEAD (405, 501, or drops the connection). Bodies are never read."""
    try:
        response = await client.head(url)
        if response.status_code not in HEAD_REFUSED:
            return response
    except (httpx.RemoteProtocolError, httpx.ReadError):
        pass
    async with client.stream("GET", url) as response:
        return response


def _connect_reason(exc: httpx.ConnectError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "no such host"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "no such host"
    return f"cannot connect: {text}" if text else "cannot connect"


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


# together ------------------------------------------------------------------------------------


async def check_links(links: list[FoundLink], *, seconds: float, concurrency: int = CONCURRENCY) -> list[LinkProblem]:
    """The broken and redirected ones of `links`, in the order they are written."""
    outcomes = await follow((link.url for link in links), seconds=seconds, concurrency=concurrency)
    return [LinkProblem(link, outcomes[link.url]) for link in links if not outcomes[link.url].fine]
