"""A newsletter folder read from disk: newsletter.yaml, content/issues/*.yaml and content/minutes/*.yaml, validated.

Every problem is reported with its file, line and field, all at once, so an editor can fix a
file in one pass.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .content import Image, Issue, Item, Minutes, Newsletter
from .errors import ContentError, NotFound, Problem
from .images import BadImage, ImageFile, local_name, read_image
from .source import Loc, Source, field_path, read_yaml

__all__ = [
    "Folder",
    "Loc",
    "Source",
    "field_path",
    "image_files",
    "issue_files",
    "load_folder",
    "load_newsletter",
    "minutes_files",
    "read_yaml",
]

M = TypeVar("M", bound=BaseModel)
ISSUE_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})\.ya?ml")
MINUTES_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.ya?ml")


def _messages(error: ValidationError, source: Source, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for e in error.errors(include_url=False):
        loc = tuple(e["loc"])
        message = {
            "missing": "required field is missing",
            "extra_forbidden": "unknown key" + _did_you_mean(model, loc),
        }.get(e["type"], e["msg"])
        if e["type"] == "too_short" and loc and loc[-1] == "networks":
            message = "an empty list reaches nobody: name the networks, or leave the key out to reach every network"
        elif (
            e["type"] not in ("missing", "extra_forbidden")
            and "input" in e
            and not isinstance(e["input"], (dict, list))
        ):
            shown = repr(e["input"])
            if (
                e["type"] not in ("unknown_id", "url", "slug", "time", "timezone", "cron", "duplicate")
                and len(shown) < 80
            ):
                message += f" (got {shown})"
        problems.append(source.problem(loc, message))
    return problems


def _did_you_mean(model: type[BaseModel], loc: Loc) -> str:
    """' (did you mean 'programme'?)' for a misspelt key at `loc`, from the keys the model has there."""
    if not loc:  # an error about the whole file
        return ""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        inner = _model_in(info.annotation) if info else None
        if inner is None:
            return ""
        model = inner
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside `annotation` (Item in `list[Item] | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def validate(model: type[M], data: Any, source: Source, *, context: dict | None = None) -> M:
    """Validate `data` read from `source`, or raise ContentError naming each bad field's line."""
    if not isinstance(data, dict):
        raise ContentError([source.problem((), f"expected a mapping of keys, got {type(data).__name__}")])
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ContentError(_messages(exc, source, model)) from None


@dataclass
class Folder:
    """A loaded newsletter folder: standing settings and every valid issue, keyed by date.

    A file with errors stops only the issues that draw on it (its own date and later ones);
    for an earlier issue it is a warning, so next week's half-written draft never stops this week's.
    """

    root: Path
    newsletter: Newsletter
    issues: dict[dt.date, Issue]
    sources: dict[dt.date, Source]
    newsletter_source: Source
    broken: dict[Path, list[Problem]] = field(default_factory=dict)
    minutes: dict[tuple[dt.date, str], Minutes] = field(default_factory=dict)  # by (date, network), oldest first
    minutes_sources: dict[tuple[dt.date, str], Source] = field(default_factory=dict)
    _images: dict[str, ImageFile] = field(default_factory=dict, repr=False)

    @property
    def issues_dir(self) -> Path:
        return self.root / "content" / "issues"

    @property
    def images_dir(self) -> Path:
        return self.root / "content" / "images"

    def image(self, name: str) -> ImageFile:
        """The checked picture content/images/`name` (read once per folder version); BadImage if unusable."""
        if name not in self._images:
            self._images[name] = read_image(self.images_dir, name)
        return self._images[name]

    @property
    def templates(self) -> Path | None:
        """The folder's own templates/email, if it has one (None: the defaults)."""
        folder = self.root / "templates" / "email"
        return folder if folder.is_dir() else None

    def dates(self) -> list[dt.date]:
        """Every issue date in the folder, valid or not, oldest first."""
        broken = [p for p in self.broken if p.parent == self.issues_dir]
        return sorted(set(self.issues) | {d for d in map(file_date, broken) if d is not None})

    def latest_date(self) -> dt.date:
        dates = self.dates()
        if not dates:
            raise NotFound(f"no issue files in {self.issues_dir}")
        return dates[-1]

    def problems(self, date: dt.date) -> tuple[list[Problem], list[Problem]]:
        """(errors, warnings) of the files the issue of `date` draws on, and of the later drafts."""
        errors: list[Problem] = []
        warnings: list[Problem] = []
        for path, found in self.broken.items():
            when = file_date(path)
            if when is None or when <= date:
                errors.extend(found)
            else:
                warnings.extend(replace(p, severity="warning", message=f"(a later draft) {p.message}") for p in found)
        return errors, warnings

    def issue(self, date: dt.date | None = None) -> Issue:
        """The issue of `date` (default: the newest); ContentError if it, or a file it draws on, has errors."""
        date = date or self.latest_date()
        errors, _ = self.problems(date)
        if errors:
            raise ContentError(errors)
        try:
            return self.issues[date]
        except KeyError:
            raise NotFound(f"no issue dated {date} (expected {self.issues_dir / f'{date}.yaml'})") from None


def file_date(path: Path) -> dt.date | None:
    """The date an issue or minutes file's name gives (YYYY-MM-DD.yaml, YYYY-MM-DD-<network>.yaml), or None."""
    match = ISSUE_NAME.fullmatch(path.name)
    if match is None and path.parent.name == "minutes":
        match = MINUTES_NAME.fullmatch(path.name)
    try:
        return dt.date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        return None


def issue_files(root: Path) -> list[Path]:
    return _yaml_files(root / "content" / "issues")


def minutes_files(root: Path) -> list[Path]:
    return _yaml_files(root / "content" / "minutes")


def image_files(root: Path) -> list[Path]:
    folder = root / "content" / "images"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []


def load_newsletter(root: Path) -> tuple[Newsletter, Source]:
    path = root / "newsletter.yaml"
    if not path.is_file():
        raise ContentError(
            [Problem(path, None, "", "no newsletter.yaml here (use --dir to point at the newsletter folder)")]
        )
    data, source = read_yaml(path)
    return validate(Newsletter, data, source), source


def load_folder(root: Path | str = ".") -> Folder:
    """Read and validate a whole newsletter folder; errors in newsletter.yaml raise, an issue file's are kept."""
    root = Path(root)
    newsletter, newsletter_source = load_newsletter(root)
    folder = Folder(root, newsletter, {}, {}, newsletter_source)
    if logo := _image_problems(folder, [(("logo",), newsletter.logo)], newsletter_source):
        raise ContentError(logo)
    _load_minutes(folder)
    numbers: dict[int, Path] = {}
    for path in issue_files(root):
        try:
            issue, source = _load_issue(path, folder)
        except ContentError as exc:
            folder.broken[path] = exc.problems
            continue
        if issue.number in numbers:
            other = numbers[issue.number]
            folder.broken[path] = [source.problem(("number",), f"number {issue.number} is also used by {other.name}")]
            continue
        numbers[issue.number] = path
        folder.issues[issue.date] = issue
        folder.sources[issue.date] = source
    return folder


def _load_issue(path: Path, folder: Folder) -> tuple[Issue, Source]:
    data, source = read_yaml(path)
    issue = validate(Issue, data, source, context=folder.newsletter.validation_context)
    found = _cross_check(issue, source) + _image_problems(folder, _issue_images(issue), source)
    if found:
        raise ContentError(found)
    return issue, source


def _load_minutes(folder: Folder) -> None:
    """Every content/minutes file into `folder`: the valid ones in `minutes`, the others in `broken`."""
    context = folder.newsletter.validation_context
    for path in minutes_files(folder.root):
        try:
            data, source = read_yaml(path)
            minutes = validate(Minutes, data, source, context=context)
            if found := _minutes_name_problems(minutes, source):
                raise ContentError(found)
        except ContentError as exc:
            folder.broken[path] = exc.problems
            continue
        key = (minutes.date, minutes.network)
        if key in folder.minutes:
            other = folder.minutes_sources[key].path.name
            folder.broken[path] = [source.problem((), f"the minutes of this meeting are also in {other}")]
            continue
        folder.minutes[key], folder.minutes_sources[key] = minutes, source
    folder.minutes = dict(sorted(folder.minutes.items()))


def _minutes_name_problems(minutes: Minutes, source: Source) -> list[Problem]:
    """The file name must say the meeting's date and network: YYYY-MM-DD-<network>.yaml."""
    expected = f"{minutes.date}-{minutes.network}.yaml"
    match = MINUTES_NAME.fullmatch(source.path.name)
    if not match:
        return [source.problem((), f"file name must be the meeting's date and network, e.g. {expected}")]
    problems = []
    if match.group(1) != minutes.date.isoformat():
        problems.append(
            source.problem(("date",), f"date {minutes.date} disagrees with the file name {source.path.name}")
        )
    if match.group(2) != minutes.network:
        problems.append(
            source.problem(("network",), f"network '{minutes.network}' disagrees with the file name {source.path.name}")
        )
    return problems


def _all_items(issue: Issue) -> list[tuple[Loc, Item]]:
    """Every item of the issue, at the top and in its sections, with where it is written."""
    found: list[tuple[Loc, Item]] = [(("items", i), item) for i, item in enumerate(issue.items)]
    for s, section in enumerate(issue.sections):
        found += [(("sections", s, "items", i), item) for i, item in enumerate(section.items)]
    return found


def _issue_images(issue: Issue) -> list[tuple[Loc, Image | None]]:
    """Each picture of the issue with where it is written."""
    found: list[tuple[Loc, Image | None]] = [((*loc, "image"), item.image) for loc, item in _all_items(issue)]
    for s, section in enumerate(issue.sections):
        found += [(("sections", s, "articles", a, "image"), art.image) for a, art in enumerate(section.articles)]
    return found


def _image_problems(folder: Folder, images: list[tuple[Loc, Image | None]], source: Source) -> list[Problem]:
    """A picture named from content/images/ must be there and be one an email can show."""
    problems = []
    for loc, image in images:
        if image is None:
            continue
        name = local_name(image.src)
        if name is None:
            if not image.src.lower().startswith("https://"):
                problems.append(
                    source.problem(
                        (*loc, "src"), f"a picture must be a file in content/images/ or an https URL, not {image.src}"
                    )
                )
            continue
        try:
            folder.image(name)
        except BadImage as exc:
            problems.append(source.problem((*loc, "src"), str(exc)))
    return problems


def _cross_check(issue: Issue, source: Source) -> list[Problem]:
    """Rules that span fields: the file name agrees with `date`, reminders end after the issue."""
    problems = []
    seen: set[str] = set()
    for s, section in enumerate(issue.sections):
        if section.section in seen:
            problems.append(
                source.problem(("sections", s, "section"), f"section '{section.section}' appears twice: merge the two")
            )
        seen.add(section.section or "")
    match = ISSUE_NAME.fullmatch(source.path.name)
    if not match:
        problems.append(source.problem((), f"file name must be the issue date, e.g. {issue.date}.yaml"))
    elif match.group(1) != issue.date.isoformat():
        problems.append(source.problem(("date",), f"date {issue.date} disagrees with the file name {source.path.name}"))
    for loc, item in _all_items(issue):
        if item.remind_until is not None and item.remind_until < issue.date:
            problems.append(
                source.problem((*loc, "remind_until"), f"{item.remind_until} is before the issue date {issue.date}")
            )
    for j, meeting in enumerate(issue.meetings):
        if meeting.date < issue.date:
            problems.append(
                source.problem(
                    ("meetings", j, "date"), f"{meeting.date} is before the issue that announces it ({issue.date})"
                )
            )
        if meeting.start and meeting.end and meeting.end <= meeting.start:
            problems.append(
                source.problem(
                    ("meetings", j, "end"), f"the meeting ends ({meeting.end}) before it starts ({meeting.start})"
                )
            )
    return problems
