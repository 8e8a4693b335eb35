"""A "Tools & Templates" line ("Audit tool published by Westshire Council on 6 November 2026") as a resource."""

from __future__ import annotations

import datetime as dt
import re

from .dates import find_date
from .lines import URL

PUBLISHED_BY = re.compile(
    r"^(?P<title>.+?)\s*[,–—-]?\s+(?:published|produced|issued|released)\s+by\s+(?P<rest>.+)$", re.IGNORECASE
)
PARTS = re.compile(r"\s+[–—|]\s+|\s+-\s+")


def read_resource(text: str, *, near: dt.date | None = None) -> dict:
    """FORMAT.md's resource keys found in `text`: title always; publisher, published and url where it gives them."""
    resource: dict = {}
    if url := URL.search(text):
        resource["url"] = url.group() if url.group().lower().startswith("http") else "https://" + url.group()
        text = (text[: url.start()] + text[url.end() :]).replace("()", "").replace("<>", "")
    text = text.strip(" .,:;–—-")
    if match := PUBLISHED_BY.match(text):
        title, rest = match["title"], match["rest"]
    elif bracket := re.match(r"^(?P<title>.+?)\s*\((?P<rest>[^()]+)\)$", text):
        title, rest = bracket["title"], bracket["rest"]  # "Audit tool (Westshire Council, 6 November 2026)"
    elif len(parts := PARTS.split(text, maxsplit=1)) == 2:
        title, rest = parts  # "Audit tool – Westshire Council – 6 November 2026"
    else:
        title, rest = text, ""
    found = find_date(rest, near=near)
    if found is None and not rest and (in_title := find_date(title, near=near)) and in_title.span[1] == len(title):
        found, title, rest = in_title, title[: in_title.span[0]], ""
    if found is not None:
        resource["published"] = found.date
        rest = rest[: found.span[0]] + rest[found.span[1] :]
    publisher = re.sub(r"^(?:the)\s+", "", rest.strip(" .,:;–—-|"), flags=re.IGNORECASE)
    publisher = re.sub(r"\s+(?:on|dated)$", "", publisher).strip(" ,")
    resource = {"title": title.strip(" .,:;–—-"), **({"publisher": publisher} if publisher else {}), **resource}
    return {k: resource[k] for k in ("title", "publisher", "published", "url") if k in resource}
