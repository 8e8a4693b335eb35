"""Our HTML pages: the templates, the folder content they show, the error page of a refusal, and the small routes."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import jinja2
import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ..assembly import assemble
from ..errors import ContentError
from ..folder import Folder, image_files, issue_files, load_folder, minutes_files
from ..render import render
from ..templates import WEB as TEMPLATES

log = logging.getLogger(__name__)

PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}  # pages showing a subscriber's own address


def _keeping_good_issues(new: Folder, old: Folder) -> Folder:
    """`new`, with the last good version of each issue that an edit has since broken."""
    for path in list(new.broken):
        date = next((d for d, source in old.sources.items() if source.path == path), None)
        if date is not None:
            log.warning("%s has errors, still serving its last good version", path.name)
            new.issues[date], new.sources[date] = old.issues[date], old.sources[date]
            del new.broken[path]
    return new


class Content:
    """The newsletter folder, re-read when its files change; an edit with errors keeps the last good one."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._stamp = self._current_stamp()
        self._folder = load_folder(self.root)  # bad content at start is the caller's error to report
        self._rendered: dict[dt.date, str] = {}

    def _current_stamp(self) -> tuple[tuple[str, int, int], ...]:
        paths = [
            self.root / "newsletter.yaml",
            *issue_files(self.root),
            *minutes_files(self.root),
            *image_files(self.root),
        ]
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths if p.exists())

    def folder(self) -> Folder:
        with self._lock:
            stamp = self._current_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._folder = _keeping_good_issues(load_folder(self.root), self._folder)
                    self._rendered = {}
                except ContentError as exc:
                    log.warning("content has errors, still serving the last good version: %s", exc)
            return self._folder

    def issue_html(self, date: dt.date) -> str:
        """The public (not personalised) HTML of the issue of `date`, rendered once per content version."""
        folder = self.folder()
        with self._lock:
            if date not in self._rendered:
                self._rendered[date] = render(assemble(folder, date), personal=False).html
            return self._rendered[date]


class Refusal(HTTPException):
    """A request answered with our error page: status code, title and one-line explanation."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(status, detail=message)
        self.title = title


def templates() -> jinja2.Environment:
    """The page templates: autoescaped, and a name missing from the context is an error, not a blank."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )


def stylesheet() -> str:
    return (TEMPLATES / "site.css").read_text(encoding="utf-8")


def page(
    request: Request, name: str, status: int = 200, *, headers: dict[str, str] | None = None, **context: object
) -> HTMLResponse:
    """The template `name` filled for the current newsletter, with links under the app's path prefix."""
    state = request.app.state
    current = state.content.folder().newsletter
    html = state.templates.get_template(name).render(newsletter=current, prefix=state.prefix, **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def refused(request: Request, exc: Exception) -> Response:
    """The exception handler for Refusal: our error page, never cached nor indexed."""
    assert isinstance(exc, Refusal)  # the app registers this handler for Refusal alone
    return page(request, "error.html", exc.status_code, title=exc.title, message=exc.detail, headers=PRIVATE)


async def home(request: Request) -> Response:
    return RedirectResponse(f"{request.app.state.prefix}/archive/", status_code=302)


def health(request: Request) -> Response:
    """200 when the database answers, else 503 (for the container's health check and the proxy)."""
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.error("health check: database unreachable: %s", exc)
        return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def css(request: Request) -> Response:
    return Response(
        request.app.state.stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )
