"""A YAML content file read safely: bounded in size, aliases and depth, with the line of every key.

YAML 1.2 (ruamel.yaml) is only composed into nodes here; values are built by this module, so a
"billion laughs", a recursive alias, an impossible date, a huge number or a duplicate key is one
`file:line: field: message` in an editor's words, never a traceback or unbounded memory.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ContentError, Problem

Loc = tuple[str | int, ...]

MAX_FILE_BYTES = 1024 * 1024  # an issue of 40 items is about 20 KB: a megabyte is a mistake, not an issue
MAX_VALUES = 20_000  # values after aliases are expanded: bounds memory and time for any 1 MB file
MAX_DIGITS = 30  # longer numbers are not numbers an editor means
MAX_DEPTH = 40

STR = "tag:yaml.org,2002:str"
PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
    STR,
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


@dataclass
class Source:
    """A YAML file and the line of each key in it, for pointing errors at the right place."""

    path: Path
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of the longest known prefix of `loc` (a missing key points at its parent)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def problem(self, loc: Loc, message: str, *, severity: str = "error") -> Problem:
        return Problem(self.path, self.line(loc), field_path(loc), message, severity)


def field_path(loc: Loc) -> str:
    """('items', 2, 'networks', 0) -> 'items[3].networks[1]': counted from 1, as an editor counts."""
    out = ""
    for part in loc:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path) -> tuple[Any, Source]:
    """Parse one YAML file, recording the line of every key and list entry; ContentError on any fault."""
    source = Source(path)
    text = _read_text(path)
    node = _compose(path, text)
    if node is None:
        return None, source
    builder = _Builder(source)
    builder.size(node, 1)
    value = builder.build(node, ())
    if builder.problems:
        raise ContentError(builder.problems)
    return value, source


def _read_text(path: Path) -> str:
    def fail(message: str, line: int | None = None) -> ContentError:
        return ContentError([Problem(path, line, "", message)])

    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise fail(
            f"the file is {size / 1024 / 1024:.1f} MB; a content file may be at most {MAX_FILE_BYTES // 1024} KB"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail(f"not UTF-8 text ({exc.reason} at byte {exc.start}): save the file as UTF-8", line) from None
    bad = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise fail(f"a control character (code {ord(bad.group()):#04x}) is in the text: delete it", line)
    return text


def _compose(path: Path, text: str) -> Node | None:
    try:
        return YAML(typ="rt").compose(io.StringIO(text))  # nodes only: nothing is constructed or expanded
    except MarkedYAMLError as exc:
        raise ContentError([_syntax_problem(path, text, exc)]) from None
    except RecursionError:
        raise ContentError([Problem(path, None, "", f"nested deeper than {MAX_DEPTH} levels")]) from None
    except YAMLError as exc:
        raise ContentError([Problem(path, None, "", f"YAML syntax: {exc}".splitlines()[0])]) from None


def _syntax_problem(path: Path, text: str, exc: MarkedYAMLError) -> Problem:
    """A parser's complaint in an editor's words, at the line where the editor must look."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    problem, context = exc.problem or "", exc.context or ""
    if "'\\t'" in problem:
        at = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        if at[: len(at) - len(at.lstrip())].count("\t"):
            return Problem(path, line, "", "a tab is used to indent: indent with spaces")
        return Problem(path, line, "", "a tab inside the text (often pasted from Word): replace it with a space")
    if "mapping values are not allowed" in problem:
        return Problem(path, line, "", 'a colon inside text needs quotes: put the whole text in "double quotes"')
    if "quoted scalar" in context and exc.context_mark is not None:
        return Problem(path, exc.context_mark.line + 1, "", "a quote opened here is never closed")
    if "block end" in problem or "block mapping" in context or "expected ':'" in problem:
        return Problem(path, line, "", "the indentation is off: line this key up with the others, using spaces")
    if "alias" in problem and "undefined" in problem:
        return Problem(path, line, "", f"YAML syntax: {problem}")
    return Problem(path, line, "", f"YAML syntax: {problem or context}")


class _Builder:
    """Builds plain values from nodes, recording lines and collecting every problem it meets."""

    def __init__(self, source: Source):
        self.source = source
        self.problems: list[Problem] = []
        self._sizes: dict[int, int] = {}

    def fail(self, node: Node, loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.source.path, node.start_mark.line + 1, field_path(loc), message))

    def size(self, node: Node, depth: int, active: frozenset[int] = frozenset()) -> int:
        """How many values `node` stands for once aliases are expanded; raises past the bounds."""
        key = id(node)
        if key in active:
            raise self._fatal(node, "an alias refers to itself (a recursive alias)")
        if key in self._sizes:
            return self._sizes[key]
        if depth > MAX_DEPTH:
            raise self._fatal(node, f"nested deeper than {MAX_DEPTH} levels")
        total = 1
        for child in _children(node):
            total += self.size(child, depth + 1, active | {key})
            if total > MAX_VALUES:
                raise self._fatal(node, f"aliases expand this to more than {MAX_VALUES:,} values")
        self._sizes[key] = total
        return total

    def _fatal(self, node: Node, message: str) -> ContentError:
        return ContentError([Problem(self.source.path, node.start_mark.line + 1, "", message)])

    def build(self, node: Node, loc: Loc) -> Any:
        self.source.lines.setdefault(loc, node.start_mark.line + 1)
        if _tag(node) not in PLAIN_TAGS:
            self.fail(node, loc, f"the tag {_tag(node)} is not allowed here")
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, SequenceNode):
            return [self.build(child, (*loc, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, loc)

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, loc) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                self.fail(key_node, loc, "a key must be a word such as 'update'")
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                self.fail(key_node, (*loc, key), f"'{key}' is given twice, on lines {seen[key]} and {line}: keep one")
                continue
            seen[key] = line
            self.source.lines[(*loc, key)] = line
            out[key] = self.build(value_node, (*loc, key))
        return out

    def _scalar(self, node: ScalarNode, loc: Loc) -> Any:
        text, tag = node.value, _tag(node)
        if tag == STR or node.style in ("'", '"', "|", ">"):
            return text
        if tag.endswith(":null"):
            return None
        if tag.endswith(":bool"):
            return text.lower() == "true"
        if tag.endswith((":int", ":float")):
            if len(text.lstrip("+-0")) > MAX_DIGITS:
                self.fail(node, loc, f"a number of {len(text)} digits: write at most {MAX_DIGITS}")
                return None
            return _number(text, tag)
        return text  # timestamps stay text: the model checks dates, so 2027-13-08 is a field error


def _number(text: str, tag: str) -> int | float | str:
    clean = text.replace("_", "")
    try:
        if tag.endswith(":int"):
            return int(clean, 0) if re.match(r"[-+]?0[xXoObB]", clean) else int(clean)
        lowered = clean.lower()
        if lowered.lstrip("+-") in (".inf", ".nan"):
            return math.nan if "nan" in lowered else (-math.inf if lowered.startswith("-") else math.inf)
        return float(clean)
    except ValueError:
        return text


def _tag(node: Node) -> str:
    tag = node.tag  # a str or a Tag object, by ruamel.yaml version
    return str(getattr(tag, "value", tag))


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, SequenceNode):
        yield from node.value
