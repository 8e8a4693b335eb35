"""A newsletter folder read from disk: newsletter.yaml and content/issues/*.yaml, validated.

Every problem is reported with its file, line and field, all at once, so an editor can fix a
file in one pass.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .content import Issue, Newsletter
from .errors import ContentError, NotFound, Problem

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]
ISSUE_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})\.ya?ml")


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
    """('items', 2, 'networks', 0) -> 'items[2].networks[0]'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_yaml(path: Path) -> tuple[Any, Source]:
    """Parse one YAML file, recording the line of every key and list entry."""
    source = Source(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContentError([Problem(path, None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, source

        def walk(node: yaml.Node, loc: Loc) -> None:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    key = loader.construct_object(key_node)
                    source.lines[loc + (key,)] = key_node.start_mark.line + 1
                    walk(value_node, loc + (key,))
            elif isinstance(node, yaml.SequenceNode):
                for index, child in enumerate(node.value):
                    source.lines[loc + (index,)] = child.start_mark.line + 1
                    walk(child, loc + (index,))

        source.lines[()] = node.start_mark.line + 1
        walk(node, ())
        return loader.construct_document(node), source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ContentError([Problem(path, line, "", f"YAML syntax: {exc.problem or exc.context}")]) from None
    finally:
        loader.dispose()


def _messages(error: ValidationError, source: Source) -> list[Problem]:
    problems = []
    for e in error.errors(include_url=False):
        loc = tuple(e["loc"])
        message = {
            "missing": "required field is missing",
            "extra_forbidden": "unknown key",
        }.get(e["type"], e["msg"])
        if e["type"] not in ("missing", "extra_forbidden") and "input" in e and not isinstance(e["input"], (dict, list)):
            if e["type"] not in ("unknown_id", "url", "slug", "time", "timezone", "cron", "duplicate"):
                message += f" (got {e['input']!r})"
        problems.append(source.problem(loc, message))
    return problems


def validate(model: type[M], data: Any, source: Source, *, context: dict | None = None) -> M:
    """Validate `data` read from `source`, or raise ContentError naming each bad field's line."""
    if not isinstance(data, dict):
        raise ContentError([source.problem((), f"expected a mapping of keys, got {type(data).__name__}")])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ContentError(_messages(exc, source)) from None


@dataclass
class Folder:
    """A loaded newsletter folder: standing settings and every issue, keyed by date."""

    root: Path
    newsletter: Newsletter
    issues: dict[dt.date, Issue]
    sources: dict[dt.date, Source]
    newsletter_source: Source

    @property
    def issues_dir(self) -> Path:
        return self.root / "content" / "issues"

    @property
    def templates(self) -> Path | None:
        """The folder's own templates/email, if it has one (None: the defaults)."""
        folder = self.root / "templates" / "email"
        return folder if folder.is_dir() else None

    def latest_date(self) -> dt.date:
        if not self.issues:
            raise NotFound(f"no issue files in {self.issues_dir}")
        return max(self.issues)

    def issue(self, date: dt.date | None = None) -> Issue:
        """The issue of `date` (default: the newest)."""
        date = date or self.latest_date()
        try:
            return self.issues[date]
        except KeyError:
            raise NotFound(f"no issue dated {date} (expected {self.issues_dir / f'{date}.yaml'})") from None


def issue_files(root: Path) -> list[Path]:
    folder = root / "content" / "issues"
    return sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []


def load_newsletter(root: Path) -> tuple[Newsletter, Source]:
    path = root / "newsletter.yaml"
    if not path.is_file():
        raise ContentError([Problem(path, None, "", "no newsletter.yaml here (use --dir to point at the newsletter folder)")])
    data, source = read_yaml(path)
    return validate(Newsletter, data, source), source


def load_folder(root: Path | str = ".") -> Folder:
    """Read and validate a whole newsletter folder; raise ContentError listing every error found."""
    root = Path(root)
    newsletter, newsletter_source = load_newsletter(root)
    problems: list[Problem] = []
    issues: dict[dt.date, Issue] = {}
    sources: dict[dt.date, Source] = {}
    numbers: dict[int, Path] = {}
    for path in issue_files(root):
        try:
            data, source = read_yaml(path)
            issue = validate(Issue, data, source, context=newsletter.validation_context)
        except ContentError as exc:
            problems.extend(exc.problems)
            continue
        found = _cross_check(issue, source)
        problems.extend(found)
        if issue.number in numbers:
            other = numbers[issue.number]
            problems.append(source.problem(("number",), f"number {issue.number} is also used by {other.name}"))
            continue
        if found:
            continue
        numbers[issue.number] = path
        issues[issue.date] = issue
        sources[issue.date] = source
    if problems:
        raise ContentError(problems)
    return Folder(root, newsletter, issues, sources, newsletter_source)


def _cross_check(issue: Issue, source: Source) -> list[Problem]:
    """Rules that span fields: the file name agrees with `date`, reminders end after the issue."""
    problems = []
    match = ISSUE_NAME.fullmatch(source.path.name)
    if not match:
        problems.append(source.problem((), f"file name must be the issue date, e.g. {issue.date}.yaml"))
    elif match.group(1) != issue.date.isoformat():
        problems.append(source.problem(("date",), f"date {issue.date} disagrees with the file name {source.path.name}"))
    for i, item in enumerate(issue.items):
        if item.remind_until is not None and item.remind_until < issue.date:
            problems.append(source.problem(("items", i, "remind_until"), f"{item.remind_until} is before the issue date {issue.date}"))
    return problems
