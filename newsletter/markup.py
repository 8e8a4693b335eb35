"""Markdown fields as email HTML and as plain text (CommonMark, raw HTML escaped), and the links in them."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

# html=False: raw HTML in content is shown as text, never passed through. Images are off: an email
# must not load remote pictures the editor did not mean to embed. Tables (GFM) are on: a fee table.
_md = MarkdownIt("commonmark", {"html": False}).disable("image").enable("table")
BARE_URL = re.compile(r"(?:https?://|www\.)[^\s<>()]*[^\s<>().,;:!?'\"]", re.IGNORECASE)
WIDTH = 76


@dataclass(frozen=True)
class MarkdownLink:
    """A link written in a markdown field: its text, target, and the line (0-based) within the field."""

    text: str
    url: str
    line: int


# A data table styled inline, as mail clients that drop <style> still show it; no role="presentation":
# a screen reader should read it as the table it is.
TABLE_STYLE = "border-collapse:collapse;width:100%;margin:0 0 14px;font-size:15px;line-height:1.4;word-break:normal"
CELL_STYLE = "border:1px solid #b1b4b6;padding:6px 8px;vertical-align:top"
HEADER_STYLE = CELL_STYLE + ";background-color:#f3f2f1;font-weight:700"


def _render_table_open(renderer: object, tokens: list[Token], idx: int, options: object, env: object) -> str:
    return f'<table class="data" cellpadding="0" cellspacing="0" style="{TABLE_STYLE}">\n'


def _render_cell_open(renderer: object, tokens: list[Token], idx: int, options: object, env: object) -> str:
    token = tokens[idx]
    tag = "th" if token.type == "th_open" else "td"
    align = str(token.attrs.get("style", "text-align:left"))
    scope = ' scope="col"' if tag == "th" else ""
    return f'<{tag}{scope} style="{HEADER_STYLE if tag == "th" else CELL_STYLE};{align}">'


_md.add_render_rule("table_open", _render_table_open)
_md.add_render_rule("th_open", _render_cell_open)
_md.add_render_rule("td_open", _render_cell_open)


def to_html(text: str | None) -> Markup:
    """A markdown field as safe HTML (raw HTML escaped)."""
    return Markup(_md.render(text)) if text else Markup("")


def links(text: str | None) -> list[MarkdownLink]:
    """Every link in `text`, including <autolinks> and bare URLs left as text (their text is the URL)."""
    found = []
    for block in _md.parse(text or ""):
        if block.type != "inline":
            continue
        line = block.map[0] if block.map else 0
        children = block.children or []
        i = 0
        while i < len(children):
            token = children[i]
            if token.type == "softbreak" or token.type == "hardbreak":
                line += 1
            elif token.type == "link_open":
                label, i = _inline_text(children, i + 1, until="link_close")
                found.append(MarkdownLink(label, str(token.attrs.get("href", "")), line))
            elif token.type == "text":
                found.extend(MarkdownLink(m.group(), m.group(), line) for m in BARE_URL.finditer(token.content))
            i += 1
    return found


def _inline_text(children: list[Token], start: int, *, until: str) -> tuple[str, int]:
    """The plain text of inline tokens from `start` up to the `until` token; returns it and that index."""
    out = []
    i = start
    while i < len(children) and children[i].type != until:
        t = children[i]
        out.append(" " if t.type in ("softbreak", "hardbreak") else t.content)
        i += 1
    return "".join(out), i


def _inline(children: list[Token]) -> str:
    """Inline tokens as plain text: emphasis dropped, a link as `text (url)`."""
    out = []
    i = 0
    while i < len(children):
        t = children[i]
        if t.type == "link_open":
            label, i = _inline_text(children, i + 1, until="link_close")
            href = str(t.attrs.get("href", ""))
            shown = href.removeprefix("mailto:")
            out.append(shown if label in (href, shown) else f"{label} ({shown})")
        elif t.type == "softbreak":
            out.append(" ")
        elif t.type == "hardbreak":
            out.append("\n")
        else:
            out.append(t.content)
        i += 1
    return "".join(out)


def wrap(text: str, *, first: str, rest: str, width: int) -> list[str]:
    """Lines of at most `width` where possible; a URL or a token is never broken."""
    lines = []
    for n, part in enumerate(text.split("\n")):
        lead = first if n == 0 else rest
        lines.extend(
            textwrap.wrap(
                part, width, initial_indent=lead, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
            )
            or [lead.rstrip()]
        )
    return lines


def to_text(text: str | None, *, width: int = WIDTH, indent: str = "") -> str:
    """A markdown field as wrapped plain text for the text/plain part; every link keeps its URL."""
    if not text:
        return ""
    out: list[str] = []
    lists: list[list] = []  # stack of [marker kind, next number]
    marker = None  # the marker of a list item whose first line is still to come
    tight = new_list = False
    quote = ""
    table: list[list[str]] | None = None  # the rows of the table being read
    aligns: list[str] = []
    for token in _md.parse(text):
        kind = token.type
        if table is not None:
            if kind == "tr_open":
                table.append([])
            elif kind in ("th_open", "td_open") and len(table) == 1:
                aligns.append(str(token.attrs.get("style", "")))
            elif kind == "inline":
                table[-1].append(_inline(token.children or []))
            elif kind == "table_close":
                if out:
                    out.append("")
                out.extend(indent + quote + line for line in table_text(table, aligns, width=width - len(indent)))
                table = None
            continue
        if kind == "table_open":
            table, aligns = [], []
        elif kind in ("bullet_list_open", "ordered_list_open"):
            lists.append(["-" if kind == "bullet_list_open" else ".", int(token.attrs.get("start", 1) or 1)])
            new_list = len(lists) == 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            kind_, number = lists[-1]
            marker = "- " if kind_ == "-" else f"{number}. "
            lists[-1][1] += 1
        elif kind == "paragraph_open":
            tight = token.hidden  # paragraphs of a tight list are not set apart by blank lines
        elif kind == "blockquote_open":
            quote += "> "
        elif kind == "blockquote_close":
            quote = quote[:-2]
        elif kind in ("inline", "fence", "code_block", "hr"):
            prefix = indent + quote + "  " * max(len(lists) - 1, 0)
            if kind == "hr":
                lines = [prefix + "-" * 20]
            elif kind != "inline":
                lines = [prefix + "    " + line for line in token.content.rstrip("\n").split("\n")]
            else:
                first = rest = prefix + ("  " if lists else "")
                if marker:
                    first, rest, marker = prefix + marker, prefix + " " * len(marker), None
                lines = wrap(_inline(token.children or []), first=first, rest=rest, width=width)
            if out and not (tight and lists and not new_list):
                out.append("")
            new_list = tight = False
            out.extend(lines)
    return "\n".join(line.rstrip() for line in out)


def table_text(rows: list[list[str]], aligns: list[str], *, width: int = WIDTH) -> list[str]:
    """A table as aligned columns under a rule; too wide for `width`, each row as "header: value" lines."""
    header, body = rows[0], rows[1:]
    columns = [max(len(row[c]) for row in rows) for c in range(len(header))]
    if sum(columns) + 2 * (len(columns) - 1) > width:
        out: list[str] = []
        for row in body:
            for c, (name, value) in enumerate(zip(header, row, strict=True)):
                out += wrap(f"{name}: {value}", first="- " if c == 0 else "  ", rest="    ", width=width)
        return out

    def line(row: list[str]) -> str:
        return "  ".join(_aligned(cell, columns[c], aligns[c]) for c, cell in enumerate(row)).rstrip()

    return [line(header), "  ".join("-" * w for w in columns), *(line(row) for row in body)]


def _aligned(cell: str, width: int, align: str) -> str:
    if "right" in align:
        return cell.rjust(width)
    return cell.center(width) if "center" in align else cell.ljust(width)
