"""Whether the issue a firing would send is ready: its file exists and the folder passes `newsletter check`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..checks import check
from ..errors import ContentError, NewsletterError, Problem
from ..folder import Folder, load_folder


@dataclass(frozen=True)
class IssueCheck:
    """Whether the issue file of `date` exists and passes `check`: `problems` in the file, `elsewhere` in others.

    An error anywhere in the folder stops a send, as it stops `newsletter send`; `warnings` do not.
    """

    date: dt.date
    path: Path
    exists: bool
    problems: tuple[Problem, ...] = ()
    elsewhere: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems and not self.elsewhere

    def describe(self) -> str:
        if not self.exists:
            return f"no issue file ({self.path.name} missing)"
        if self.problems:
            return f"{_errors(self.problems)} {self.problems[0]}"
        if self.elsewhere:
            return f"blocked by {_errors(self.elsewhere)[:-1]} in other files: {self.elsewhere[0]}"
        if self.warnings:
            return f"ok, {len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''} (newsletter check --date {self.date})"
        return "ok"


def _errors(problems: tuple[Problem, ...]) -> str:
    return f"{len(problems)} error{'s' if len(problems) > 1 else ''}:"


def _issue_path(root: Path, date: dt.date) -> Path:
    folder = root / "content" / "issues"
    for suffix in (".yaml", ".yml"):
        if (folder / f"{date}{suffix}").is_file():
            return folder / f"{date}{suffix}"
    return folder / f"{date}.yaml"


def check_issues(root: Path | str, dates: Iterable[dt.date]) -> list[IssueCheck]:
    """Check the issue of each date as `newsletter check` would; a firing sends only an issue that passes."""
    root = Path(root)
    try:
        folder: Folder | None = load_folder(root)
        folder_problems: tuple[Problem, ...] = ()
    except ContentError as exc:
        folder, folder_problems = None, tuple(p for p in exc.problems if p.severity == "error")
    return [_check_one(root, folder, folder_problems, date) for date in dates]


def _check_one(root: Path, folder: Folder | None, folder_problems: tuple[Problem, ...], date: dt.date) -> IssueCheck:
    """One date's check: against the loaded folder, or against the problems that kept it from loading."""
    path = _issue_path(root, date)
    if not path.is_file():
        return IssueCheck(date, path, False)
    if folder is None:
        own = tuple(p for p in folder_problems if Path(p.path).resolve() == path.resolve())
        return IssueCheck(date, path, True, own, tuple(p for p in folder_problems if p not in own))
    try:
        warnings = tuple(check(folder, date=date))
    except ContentError as exc:  # this file, or an earlier one it carries forward from, has errors
        own = tuple(p for p in exc.problems if Path(p.path).resolve() == path.resolve())
        return IssueCheck(date, path, True, own, tuple(p for p in exc.problems if p not in own))
    except NewsletterError as exc:
        return IssueCheck(date, path, True, (Problem(path, None, "", str(exc)),))
    return IssueCheck(date, path, True, warnings=warnings)
