"""YAML written the way an editor writes it: block style, `|` blocks for markdown, comments kept and added."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from ..errors import ContentError, Problem

__all__ = [
    "CommentedMap",
    "CommentedSeq",
    "DoubleQuotedScalarString",
    "block",
    "comment_lines",
    "dump",
    "text",
    "write_new",
    "yaml",
]

# a plain scalar an editor would quote: YAML indicators, ": " or " #", or something that reads as a number/date/bool
NEEDS_QUOTES = re.compile(
    r"^[-?:,\[\]{}#&*!|>'\"%@`]|: | #|:$|^\s|\s$|^(?:[-+]?[\d._:]+|true|false|yes|no|on|off|null|~)$", re.IGNORECASE
)


def yaml() -> YAML:
    """A round-trip YAML in the examples' layout: two-space maps, lists indented under their key, no wrapping."""
    out = YAML(typ="rt")
    out.indent(mapping=2, sequence=4, offset=2)
    out.width = 4096
    out.preserve_quotes = True
    out.allow_unicode = True
    return out


def text(value: str) -> str:
    """A one-line value, in double quotes where YAML needs quotes (as the examples write them)."""
    return DoubleQuotedScalarString(value) if NEEDS_QUOTES.search(value) else value


def block(markdown: str) -> LiteralScalarString:
    """A markdown field as a `|` block."""
    return LiteralScalarString(markdown.rstrip() + "\n")


def comment_lines(lines: list[str]) -> str:
    """Lines for a ruamel comment: one comment a line, none empty (ruamel drops an empty one)."""
    return "\n".join(line.replace("\n", " ").rstrip() or " " for line in lines)


def dump(document: Any, *, trailer: list[str] | None = None) -> str:
    """`document` as YAML, then `trailer` as comment lines at the end of the file."""
    stream = io.StringIO()
    yaml().dump(document, stream)
    out = stream.getvalue()
    if trailer:
        out += "\n" + "".join(f"# {line}".rstrip() + "\n" for line in trailer)
    return out


def write_new(path: Path, content: str, *, force: bool = False) -> None:
    """Write `content` to `path`, creating folders; an existing file is replaced only with `force`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise ContentError([Problem(path, None, "", "already exists: edit it, or use --force to replace it")]) from None
    except OSError as exc:
        raise ContentError([Problem(path, None, "", f"cannot write it: {exc.strerror}")]) from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
        out.write(content)


def load(path: Path) -> Any:
    """A YAML file read for round-trip editing: its comments, order and quotes kept."""
    with path.open(encoding="utf-8-sig") as stream:
        return yaml().load(stream)


def save(path: Path, document: Any) -> None:
    stream = io.StringIO()
    yaml().dump(document, stream)
    path.write_text(stream.getvalue(), encoding="utf-8")
