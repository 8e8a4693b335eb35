"""The web archive as an Atom feed (RFC 4287): one entry per sent issue, linking to its archive page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from .content import Newsletter
from .links import archive_index_url, feed_url

ATOM = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class FeedEntry:
    title: str
    url: str  # also the entry's id: an archive URL never changes
    updated: dt.datetime
    summary: str


def _stamp(when: dt.datetime) -> str:
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def atom_feed(newsletter: Newsletter, entries: Sequence[FeedEntry]) -> bytes:
    """The feed document, newest entry first as given."""
    ET.register_namespace("", ATOM)
    q = lambda tag: f"{{{ATOM}}}{tag}"  # noqa: E731
    feed = ET.Element(q("feed"))
    ET.SubElement(feed, q("id")).text = archive_index_url(newsletter.public_url)
    ET.SubElement(feed, q("title")).text = newsletter.name
    newest = max((e.updated for e in entries), default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    ET.SubElement(feed, q("updated")).text = _stamp(newest)
    ET.SubElement(ET.SubElement(feed, q("author")), q("name")).text = newsletter.sender.name
    ET.SubElement(feed, q("link"), rel="self", href=feed_url(newsletter.public_url))
    ET.SubElement(feed, q("link"), rel="alternate", type="text/html", href=archive_index_url(newsletter.public_url))
    for entry in entries:
        node = ET.SubElement(feed, q("entry"))
        ET.SubElement(node, q("id")).text = entry.url
        ET.SubElement(node, q("title")).text = entry.title
        ET.SubElement(node, q("updated")).text = _stamp(entry.updated)
        ET.SubElement(node, q("link"), rel="alternate", type="text/html", href=entry.url)
        ET.SubElement(node, q("summary")).text = entry.summary
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
