"""The editor's desk as a Starlette app: the list of issues, an issue's form beside its email, save and test."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import ledger, subscribers
from ..delivery import SendConfig
from ..delivery.variants import composer
from ..errors import NewsletterError, Problem
from ..folder import Folder, image_files, load_folder
from ..linkcheck import check_links
from ..markup import to_html
from ..preview import picture
from ..subscribers import Status
from ..transports.base import Transport
from . import drafts, editing
from .guard import LocalHostOnly, csrf_token, remember, require_csrf
from .new import new_issue
from .signin import RequireEditor, SignIn, ask_for_link, redeem_link, signin_page

HERE = Path(__file__).parent
PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True
)
STATIC = {"desk.js": "text/javascript", "desk.css": "text/css"}
MAX_PREVIEWS = 500  # markdown fields in one request: every field of a long issue, and a bound


@dataclass
class Desk:
    """What the endpoints share: the folder, the ledger (for what is sent), and how test copies go out."""

    root: Path
    engine: sa.Engine | None = None
    send_config: SendConfig | None = None
    transport: Callable[[], Transport] | None = None
    today: Callable[[], dt.date] = dt.date.today
    link_seconds: float = 10.0  # how long Check links waits for each link

    def __post_init__(self) -> None:
        self.writing = threading.Lock()  # compare-then-replace of a file is one step

    def path(self, date: dt.date) -> Path:
        return self.root / "content" / "issues" / f"{date.isoformat()}.yaml"

    def sent(self) -> dict[dt.date, dt.datetime]:
        return ledger.sent_issues(self.engine) if self.engine is not None else {}

    def state(self, date: dt.date, sent: dict[dt.date, dt.datetime]) -> str:
        if date in sent:
            return "sent"
        return "due" if date <= self.today() else "draft"


def create_desk_app(
    root: Path,
    *,
    engine: sa.Engine | None = None,
    send_config: SendConfig | None = None,
    transport: Callable[[], Transport] | None = None,
    today: Callable[[], dt.date] = dt.date.today,
    sign_in: SignIn | None = None,
    link_seconds: float = 10.0,
) -> Starlette:
    """The desk over the folder at `root`; `engine` tells which issues are sent, `transport` carries test copies.

    Without `sign_in` it answers only a local Host; with it, anyone may reach it but only a signed-in editor gets in.
    """
    desk = Desk(Path(root), engine, send_config, transport, today, link_seconds)
    routes = [
        Route("/", issues_page),
        Route("/new", new, methods=["POST"]),
        Route("/static/{name}", static),
        Route("/images/{file}", images),
        Route("/markdown", markdown, methods=["POST"]),
        Route("/issues/{date}", issue_page),
        Route("/issues/{date}/render", render_draft, methods=["POST"]),
        Route("/issues/{date}/save", save, methods=["POST"]),
        Route("/issues/{date}/test", send_test, methods=["POST"]),
        Route("/issues/{date}/reader", reader, methods=["POST"]),
        Route("/issues/{date}/links", check_draft_links, methods=["POST"]),
    ]
    if sign_in is not None:
        routes += [
            Route("/signin", signin_page),
            Route("/signin", ask_for_link, methods=["POST"]),
            Route("/signin/{token}", redeem_link),
        ]
    guard = Middleware(LocalHostOnly) if sign_in is None else Middleware(RequireEditor, sign_in=sign_in)
    app = Starlette(
        routes=routes,
        middleware=[guard],
        exception_handlers={HTTPException: refused, NewsletterError: failed},
    )
    app.state.desk = desk
    app.state.sign_in = sign_in
    return app


# pages ---------------------------------------------------------------------------------------


def issues_page(request: Request) -> Response:
    desk: Desk = request.app.state.desk
    folder = load_folder(desk.root)
    sent = desk.sent()
    rows = [
        {
            "date": d,
            "number": folder.issues[d].number if d in folder.issues else None,
            "subject": _subject(folder, d),
            "state": desk.state(d, sent),
            "broken": desk.path(d) in folder.broken,
        }
        for d in reversed(folder.dates())
    ]
    html = PAGES.get_template("issues.html.j2").render(
        newsletter=folder.newsletter, rows=rows, csrf=csrf_token(request)
    )
    return remember(request, HTMLResponse(html))


def _subject(folder: Folder, date: dt.date) -> str:
    issue = folder.issues.get(date)
    if issue is None:
        return "(has errors)"
    return issue.subject or issue.items[0].programme


async def new(request: Request) -> Response:
    await require_csrf(request)
    desk: Desk = request.app.state.desk
    path = new_issue(desk.root, today=desk.today())
    return RedirectResponse(f"/issues/{path.stem}", status_code=303)


def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    return remember(request, FileResponse(HERE / name, media_type=STATIC[name]))


def issue_page(request: Request) -> Response:
    desk: Desk = request.app.state.desk
    date = _date(request)
    path = desk.path(date)
    if not path.is_file():
        raise HTTPException(404, f"no issue file {path.name}")
    text = path.read_text(encoding="utf-8-sig")
    folder = load_folder(desk.root)
    html = PAGES.get_template("issue.html.j2").render(
        newsletter=folder.newsletter,
        date=date,
        number=folder.issues[date].number if date in folder.issues else None,
        state=desk.state(date, desk.sent()),
        form=editing.form_values(text),
        sha256=editing.sha256(text),
        csrf=csrf_token(request),
        can_test=desk.transport is not None and desk.send_config is not None,
        can_look_up=desk.engine is not None,
        images=[p.name for p in image_files(desk.root)],
    )
    return remember(request, HTMLResponse(html))


async def markdown(request: Request) -> Response:
    """Markdown fields as the email shows their text: the same renderer, for the previews under the fields."""
    await require_csrf(request)
    texts = (await _json(request)).get("texts")
    if not isinstance(texts, list) or len(texts) > MAX_PREVIEWS or not all(isinstance(x, str) for x in texts):
        raise HTTPException(400, f"expected texts: a list of at most {MAX_PREVIEWS} strings")
    return _json_response(request, {"html": [str(to_html(text)) for text in texts]})


# the form's actions --------------------------------------------------------------------------


def images(request: Request) -> Response:
    """The folder's pictures, so the email beside the form shows them before they are published."""
    desk: Desk = request.app.state.desk
    return picture(desk.root, request.path_params["file"])


async def render_draft(request: Request) -> Response:
    """The email of the form as it stands, and its errors and warnings: nothing is saved."""
    await require_csrf(request)
    desk, date, body = request.app.state.desk, _date(request), await _json(request)
    draft = drafts.evaluate(desk.root, date, _draft_text(desk, date, body))
    networks = frozenset([body["network"]]) if body.get("network") else None
    html = (
        draft.html(networks)
        if draft.issue and (networks is None or networks <= draft.issue.newsletter.network_ids)
        else None
    )
    return _json_response(request, {**_problems(draft), "html": html})


async def save(request: Request) -> Response:
    """Write the form into the file, unless it changed on disk since the page loaded or the result has errors."""
    await require_csrf(request)
    desk, date, body = request.app.state.desk, _date(request), await _json(request)
    if desk.state(date, desk.sent()) == "sent":
        return _json_response(request, {"message": "this issue has been sent: it can no longer be changed"}, 409)
    path = desk.path(date)
    with desk.writing:
        current = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
        if editing.sha256(current) != body.get("sha256"):
            message = (
                "The file changed on disk since this page loaded (another tab or a text editor). Nothing was saved: "
                "copy your changes, reload the page, and apply them again."
            )
            return _json_response(request, {"conflict": True, "message": message}, 409)
        text = editing.apply_form(current, body.get("form") or {})
        draft = drafts.evaluate(desk.root, date, text)
        if not draft.ok:
            message = f"Not saved: fix the {len(draft.errors)} error(s) first."
            return _json_response(request, {**_problems(draft), "message": message}, 422)
        _replace(path, text)
    return _json_response(request, {**_problems(draft), "sha256": editing.sha256(text), "message": "Saved."})


async def send_test(request: Request) -> Response:
    """Each network's version of the form's issue to the address typed in, or to test_recipients; never recorded."""
    await require_csrf(request)
    desk, date, body = request.app.state.desk, _date(request), await _json(request)
    if desk.transport is None or desk.send_config is None:
        return _json_response(request, {"message": "test sending is not set up for this desk"}, 400)
    draft = drafts.evaluate(desk.root, date, _draft_text(desk, date, body))
    if draft.issue is None:
        return _json_response(request, {**_problems(draft), "message": "Fix the errors before sending a test."}, 422)
    issue = draft.issue
    typed = str(body.get("address") or "").strip()
    to = [typed] if typed else list(issue.newsletter.test_recipients)
    if not to:
        message = "Type an address, or list test_recipients in newsletter.yaml."
        return _json_response(request, {"message": message}, 400)
    count = 0
    async with desk.transport() as transport:
        for network in issue.networks:
            compose = composer(issue, frozenset([network]), desk.send_config, test=True)
            for address in to:
                await transport.send(compose.message(subscriber_id=0, email=address, name=None))
                count += 1
    message = f"Sent {count} test message(s), one per network, to {', '.join(to)}. Nothing was recorded."
    return _json_response(request, {"message": message, "sent": count})


async def reader(request: Request) -> Response:
    """Exactly the email a subscriber would get of the form's issue: their networks' version."""
    await require_csrf(request)
    desk, date, body = request.app.state.desk, _date(request), await _json(request)
    if desk.engine is None:
        return _json_response(request, {"message": "no subscriber store is open"}, 400)
    address = str(body.get("email") or "").strip()
    found = subscribers.find(desk.engine, address) if address else None
    if found is None:
        return _json_response(request, {"message": f"{address or 'nobody'} is not a subscriber"}, 404)
    draft = drafts.evaluate(desk.root, date, _draft_text(desk, date, body))
    if draft.issue is None:
        return _json_response(request, {**_problems(draft), "message": "Fix the errors first."}, 422)
    theirs = found.networks & frozenset(draft.issue.networks)
    if found.status is not Status.ACTIVE:
        message = f"{found.email} is {found.status.value}: they get nothing."
        return _json_response(request, {"message": message, "html": None})
    if not theirs:
        message = f"None of {found.email}'s networks gets this issue: they get nothing."
        return _json_response(request, {"message": message, "html": None})
    names = ", ".join(draft.issue.newsletter.network(n).name for n in sorted(theirs))
    message = f"{found.email} gets the version for {names}."
    return _json_response(request, {"message": message, "html": draft.html(theirs)})


async def check_draft_links(request: Request) -> Response:
    """Follow every link of the form's issue: the broken and redirected ones as warnings at their fields."""
    await require_csrf(request)
    desk, date, body = request.app.state.desk, _date(request), await _json(request)
    draft = drafts.evaluate(desk.root, date, _draft_text(desk, date, body))
    if not draft.ok:
        return _json_response(request, {**_problems(draft), "message": "Fix the errors before checking links."}, 422)
    found = await check_links(draft.links, seconds=desk.link_seconds)
    broken = sum(link.broken for link in found)
    message = f"{len(draft.links)} links followed: {broken} broken, {len(found) - broken} redirected."
    return _json_response(request, {"links": [_plain(link.problem()) for link in found], "message": message})


# helpers -------------------------------------------------------------------------------------


def _date(request: Request) -> dt.date:
    try:
        return dt.date.fromisoformat(request.path_params["date"])
    except ValueError:
        raise HTTPException(404, "an issue's address is /issues/YYYY-MM-DD") from None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "expected a JSON body") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object")
    return body


def _draft_text(desk: Desk, date: dt.date, body: dict[str, Any]) -> str:
    path = desk.path(date)
    current = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
    return editing.apply_form(current, body.get("form") or {})


def _problems(draft: drafts.Draft) -> dict[str, list[dict[str, Any]]]:
    return {"errors": [_plain(p) for p in draft.errors], "warnings": [_plain(p) for p in draft.warnings]}


def _plain(p: Problem) -> dict[str, Any]:
    return {"field": p.field, "line": p.line, "message": p.message, "severity": p.severity, "text": str(p)}


def _replace(path: Path, text: str) -> None:
    """Write `text` as `path` atomically: a temporary file in the same folder, flushed to disk, then renamed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _json_response(request: Request, data: dict[str, Any], status: int = 200) -> Response:
    return remember(request, JSONResponse(data, status_code=status))


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if "json" in request.headers.get("content-type", "") or request.method == "POST":
        return remember(request, JSONResponse({"message": exc.detail}, status_code=exc.status_code))
    return remember(
        request, HTMLResponse(f"<!doctype html><title>Error</title><p>{escape(str(exc.detail))}</p>", exc.status_code)
    )


async def failed(request: Request, exc: Exception) -> Response:
    """A content or setting error: one line for the editor, never a traceback."""
    return remember(request, JSONResponse({"message": str(exc).splitlines()[0]}, status_code=400))
