"""URLs that carry a user name and password (the SMTP relay, the inbound mailbox): split them, print them masked."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

PERCENT_ENCODE = "percent-encode any : / ? # @ % in the user name or password (# as %23, @ as %40, / as %2F, ? as %3F)"


def split(url: str) -> SplitResult | None:
    """`url` split, or None where part of the user name or password would be read as a path, query, fragment or port.

    urlsplit ends the host at the first / ? or #, so a password holding one of them spills its tail into the path,
    query or fragment (with the @ that followed it), or leaves its head to be read as a port.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return None
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        return None
    return parts


def redacted(url: str) -> str:
    """`url` as it may be printed: `scheme://***@host[:port]`, nothing of the user name or password, whatever they hold.

    The host is what follows the last @ (as urlsplit reads it); without an @, what precedes the first : / ? or #.
    """
    scheme, colon, rest = url.partition("://")
    if not colon:
        return "***" if "@" in url or ":" in url else url
    _, at, tail = rest.rpartition("@")
    if at:
        return f"{scheme}://***@{re.split(r'[/?#]', tail, maxsplit=1)[0]}"
    return f"{scheme}://{re.split(r'[:/?#]', rest, maxsplit=1)[0]}"
