"""An unsaved issue text read, validated, checked and rendered exactly as the saved file would be.

The draft is written into a mirror of the folder (links to every other file), so the same reader,
the same folder rules (numbers, later drafts) and the same checks apply before anything is saved.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from ..assembly import AssembledIssue, assemble
from ..checks import check
from ..errors import ContentError, NewsletterError, Problem
from ..folder import Folder, load_folder
from ..linkcheck import FoundLink, issue_links
from ..preview import local_pictures
from ..render import render

Located = TypeVar("Located", Problem, FoundLink)


@dataclass
class Draft:
    """What the folder makes of an issue text: its problems (on the real file's path) and, if valid, the issue."""

    path: Path
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    issue: AssembledIssue | None = None
    links: list[FoundLink] = field(default_factory=list)  # every address it links to, for Check links

    @property
    def ok(self) -> bool:
        return not self.errors

    def html(self, networks: frozenset[str] | None = None) -> str | None:
        """The email as a reader of `networks` sees it (None: the full issue); None while the draft has errors."""
        if self.issue is None:
            return None
        return local_pictures(render(self.issue.variant(networks)).html, self.issue.newsletter)


def evaluate(root: Path, date: dt.date, text: str) -> Draft:
    """Read `text` as ROOT/content/issues/DATE.yaml would be read, then check and assemble it."""
    real = Path(root) / "content" / "issues" / f"{date.isoformat()}.yaml"
    draft = Draft(real)
    with tempfile.TemporaryDirectory(prefix="desk-") as tmp:
        mirror = _mirror(Path(root), Path(tmp), date, text)
        try:
            folder = load_folder(mirror)
            draft.errors = [_back(p, mirror, root) for p in folder.problems(date)[0]]
            if draft.ok:
                draft.warnings = [_back(p, mirror, root) for p in check(folder, date=date)]
                draft.issue = assemble(_rooted(folder, Path(root)), date)
                draft.links = [_back(link, mirror, root) for link in issue_links(folder, date)]
        except ContentError as exc:
            draft.errors = [_back(p, mirror, root) for p in exc.problems]
        except NewsletterError as exc:
            draft.errors = [Problem(real, None, "", str(exc))]
    return draft


def _mirror(root: Path, tmp: Path, date: dt.date, text: str) -> Path:
    """TMP as a copy of ROOT made of links, with the draft's own file written in."""
    for entry in root.iterdir():
        if entry.name != "content":
            (tmp / entry.name).symlink_to(entry.resolve())
    content = tmp / "content"
    issues = content / "issues"
    issues.mkdir(parents=True)
    if (root / "content").is_dir():
        for entry in (root / "content").iterdir():
            if entry.name != "issues":
                (content / entry.name).symlink_to(entry.resolve())
    name = f"{date.isoformat()}.yaml"
    for entry in sorted((root / "content" / "issues").glob("*")):
        if entry.is_file() and entry.name != name:
            (issues / entry.name).symlink_to(entry.resolve())
    (issues / name).write_text(text, encoding="utf-8")
    return tmp


def _back(problem: Located, mirror: Path, root: Path) -> Located:
    """The problem (or link) as it would be reported on the real folder's file."""
    try:
        relative = Path(problem.path).relative_to(mirror)
    except ValueError:
        return problem
    return replace(problem, path=Path(root) / relative)


def _rooted(folder: Folder, root: Path) -> Folder:
    return replace(folder, root=root)
