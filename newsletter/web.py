"""The subscriber-facing web service: one-click unsubscribe, preferences, the web archive, meeting invitations.

A thin shell: it checks tokens and calls the subscriber store, assembly and rendering. It reads
no settings; the CLI passes in the folder, the store and the token signer.
"""

from __future__ import annotations

import collections
import datetime as dt
import hmac
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import jinja2
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import subscribers
from .assembly import assemble, default_subject
from .calendar import find_meeting, meeting_ics
from .errors import BadToken, ContentError, NotFound
from .feed import FeedEntry, atom_feed
from .folder import Folder, issue_files, load_folder
from .ledger import sent_issues
from .links import archive_url
from .render import render
from .subscribers import Status, Subscriber
from .templates import WEB as TEMPLATES
from .tokens import Signer

log = logging.getLogger(__name__)

ONE_CLICK_REASON = "one-click (List-Unsubscribe-Post)"
PAGE_REASON = "web page"
RESUBSCRIBE_REASON = "resubscribed on the preferences page"
MAX_ID = 2**31 - 1  # subscribers.id is a 32-bit INTEGER on PostgreSQL
MAX_BODY = 64 * 1024  # a form of ours is well under 1 KB

# Our own pages load only our stylesheet; nothing runs scripts. An archived issue is the email's
# HTML, whose styles are inline, so it alone may use inline styles (still no scripts).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
ISSUE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # tokens are in our URLs: never hand them to another site
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PRIVATE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}  # pages showing a subscriber's own address


class SecurityHeaders:
    """ASGI middleware: the headers above on every response (a route may set its own CSP or Referrer-Policy)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RedactTokens(logging.Filter):
    """For the access log: a URL's token is as good as a password for its subscriber's links."""

    PATTERN = re.compile(r"/(unsubscribe|preferences)/[^/?\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"/\1/<token>", a) if isinstance(a, str) else a for a in record.args)
        record.msg = self.PATTERN.sub(r"/\1/<token>", str(record.msg))
        return True


class BadTokenLimiter:
    """Counts bad tokens per client address in a sliding window; over `limit`, that client gets 429s."""

    MAX_CLIENTS = 10_000  # bound on memory: the oldest client is forgotten first

    def __init__(self, limit: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str) -> collections.deque[float] | None:
        hits = self._hits.get(client)
        if hits is not None:
            cutoff = self.clock() - self.window
            while hits and hits[0] <= cutoff:
                hits.popleft()
            if not hits:
                del self._hits[client]
                return None
        return hits

    def blocked(self, client: str) -> bool:
        with self._lock:
            hits = self._recent(client)
            return hits is not None and len(hits) >= self.limit

    def record(self, client: str) -> None:
        with self._lock:
            hits = self._recent(client)
            if hits is None:
                hits = self._hits[client] = collections.deque()
                while len(self._hits) > self.MAX_CLIENTS:
                    self._hits.popitem(last=False)
            hits.append(self.clock())


class Content:
    """The newsletter folder, re-read when its files change; an edit with errors keeps the last good one."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._stamp = self._current_stamp()
        self._folder = load_folder(self.root)  # bad content at start is the caller's error to report
        self._rendered: dict[dt.date, str] = {}

    def _current_stamp(self) -> tuple:
        paths = [self.root / "newsletter.yaml", *issue_files(self.root)]
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths if p.exists())

    def folder(self) -> Folder:
        with self._lock:
            stamp = self._current_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._folder = load_folder(self.root)
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


@dataclass(frozen=True)
class Verified:
    subscriber: Subscriber
    token: str


class _Refusal(Exception):
    """A request answered with an error page: status code, title and one-line explanation."""

    def __init__(self, status: int, title: str, message: str):
        self.status, self.title, self.message = status, title, message
        super().__init__(message)


def form_key(signer: Signer, token: str, subscriber_id: int) -> str:
    """The preferences form's anti-forgery field: a keyed MAC of the token, made with the signer's secret."""
    return signer.sign(subscriber_id, f"preferences-form {token}", issued=0)


def create_app(root: Path, engine: sa.Engine, signer: Signer, *, rate_limit: int = 20) -> Starlette:
    """The ASGI app for the folder at `root`, mounted under the path of its public_url.

    `rate_limit` is how many bad tokens one client address may present a minute before it gets 429s.
    """
    content = Content(root)
    newsletter = content.folder().newsletter
    public = urlsplit(newsletter.public_url)
    prefix = public.path.rstrip("/")
    public_origin = f"{public.scheme}://{public.netloc}".lower()
    limiter = BadTokenLimiter(rate_limit)
    pages = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )

    def page(name: str, status: int = 200, *, headers: dict[str, str] | None = None, **context) -> HTMLResponse:
        current = content.folder().newsletter
        html = pages.get_template(name).render(newsletter=current, prefix=prefix, **context)
        return HTMLResponse(html, status_code=status, headers=headers)

    def refusal(exc: _Refusal) -> HTMLResponse:
        return page("error.html", exc.status, title=exc.title, message=exc.message, headers=PRIVATE)

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def verify(request: Request) -> Verified:
        """The subscriber the path's token was made for, or _Refusal (and the bad token counted)."""
        address = client(request)
        if limiter.blocked(address):
            raise _Refusal(429, "Too many attempts", "Too many links that do not work came from your address: try again in a minute.")
        token = request.path_params["token"]
        try:
            claims = Signer.peek(token)
            if claims.subscriber_id > MAX_ID:  # out of the column's range: it cannot be ours
                raise BadToken("unknown subscriber")
            found = subscribers.by_id(engine, claims.subscriber_id)
            if found is None:
                raise BadToken("unknown subscriber")
            try:
                signer.verify(token, found.email)
            except BadToken:
                signer.verify(token, found.email, now=claims.issued.timestamp())  # authentic, so only its age failed
                limiter.record(address)
                raise _Refusal(
                    400, "This link has expired", "Use the link in a recent email, or reply to any email to ask us to change your subscription."
                ) from None
        except BadToken:
            limiter.record(address)
            raise _Refusal(400, "This link does not work", "It may have been cut short or changed. Use the link in a recent email.") from None
        return Verified(found, token)

    def token_route(handler: Callable[[Request, Verified], Response]) -> Callable[[Request], Awaitable[Response]]:
        """Check the token off the event loop, then run `handler` (also off the loop: it writes to the store)."""

        async def endpoint(request: Request) -> Response:
            try:
                if request.method == "POST" and int(request.headers.get("content-length") or 0) > MAX_BODY:
                    raise _Refusal(413, "Nothing changed", "That request was far larger than our forms send.")
                request.state.form = await _form(request) if request.method == "POST" else None
                verified = await run_in_threadpool(verify, request)
                return await run_in_threadpool(handler, request, verified)
            except _Refusal as exc:
                return refusal(exc)

        return endpoint

    # unsubscribe ---------------------------------------------------------------------------

    def unsubscribe_page(request: Request, verified: Verified) -> Response:
        """GET: never changes anything (link scanners fetch URLs); shows the confirm button."""
        return page("unsubscribe.html", subscriber=verified.subscriber, token=verified.token, done=False, headers=PRIVATE)

    def unsubscribe(request: Request, verified: Verified) -> Response:
        """POST with List-Unsubscribe=One-Click (RFC 8058): unsubscribe and answer 200, whoever posts it."""
        form = request.state.form
        if form.get("List-Unsubscribe") != "One-Click":
            raise _Refusal(400, "Nothing changed", "This address only unsubscribes when asked with List-Unsubscribe=One-Click.")
        subscriber = verified.subscriber
        if subscriber.status == Status.ACTIVE:  # a bounced or complained address stays as it is: already suppressed
            reason = PAGE_REASON if form.get("via") == "page" else ONE_CLICK_REASON
            subscribers.set_status(engine, subscriber.id, Status.UNSUBSCRIBED, reason=reason)
            log.info("subscriber %d unsubscribed (%s)", subscriber.id, reason)
            subscriber = subscribers.by_id(engine, subscriber.id) or subscriber
        return page("unsubscribe.html", subscriber=subscriber, token=verified.token, done=True, headers=PRIVATE)

    # preferences ---------------------------------------------------------------------------

    def preferences_page(request: Request, verified: Verified, *, notice: str | None = None, status: int = 200) -> Response:
        subscriber = verified.subscriber
        return page(
            "preferences.html",
            status,
            subscriber=subscriber,
            token=verified.token,
            form_key=form_key(signer, verified.token, subscriber.id),
            notice=notice,
            # the form posts back here, and the Origin check needs the browser to name our origin
            headers={**PRIVATE, "Referrer-Policy": "same-origin"},
        )

    def same_origin(request: Request) -> bool:
        """The form was posted by a page of ours: Origin (or else Referer) is our public or served origin."""
        sent = request.headers.get("origin") or request.headers.get("referer")
        if not sent or sent == "null":
            return False
        parts = urlsplit(sent)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        served = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        return origin in (public_origin, served)

    def save_preferences(request: Request, verified: Verified) -> Response:
        form = request.state.form
        subscriber = verified.subscriber
        expected = form_key(signer, verified.token, subscriber.id)
        if not same_origin(request) or not hmac.compare_digest(str(form.get("form_key", "")), expected):
            raise _Refusal(403, "Nothing changed", "This form was not sent from our preferences page. Open the link in your email again.")
        known = content.folder().newsletter.network_ids
        chosen = set(form.getlist("network"))
        if not chosen <= known:
            raise _Refusal(400, "Nothing changed", "The form named a network we do not have. Open the link in your email again.")
        if not chosen:
            if subscriber.status == Status.ACTIVE:
                subscribers.set_status(engine, subscriber.id, Status.UNSUBSCRIBED, reason=PAGE_REASON)
                log.info("subscriber %d unsubscribed (preferences page)", subscriber.id)
            notice = "You have left every network: you will not get the update any more."
        else:
            subscribers.set_networks(engine, subscriber.id, chosen, known_networks=known)
            if subscriber.status != Status.ACTIVE:
                subscribers.set_status(engine, subscriber.id, Status.ACTIVE, reason=RESUBSCRIBE_REASON)
                log.info("subscriber %d resubscribed (preferences page)", subscriber.id)
                notice = "Welcome back: you will get the update again."
            else:
                notice = "Saved: your networks are updated."
        fresh = subscribers.by_id(engine, subscriber.id) or subscriber
        return preferences_page(request, Verified(fresh, verified.token), notice=notice)

    # archive -------------------------------------------------------------------------------

    def sent_in_folder() -> tuple[Folder, list[tuple[dt.date, dt.datetime]]]:
        folder = content.folder()
        sent = sent_issues(engine)
        return folder, sorted(((d, at) for d, at in sent.items() if d in folder.issues), reverse=True)

    async def archive_index(request: Request) -> Response:
        folder, sent = await run_in_threadpool(sent_in_folder)
        issues = [
            (folder.issues[date], folder.issues[date].subject or default_subject(folder.newsletter, folder.issues[date].number, date))
            for date, _ in sent
        ]
        return page("archive.html", issues=issues)

    async def archive_issue(request: Request) -> Response:
        try:
            date = dt.date.fromisoformat(request.path_params["date"])
        except ValueError:
            return page("error.html", 404, title="No such issue", message="Issue addresses look like /archive/2026-11-27.")
        folder, sent = await run_in_threadpool(sent_in_folder)
        if date not in dict(sent):
            return page("error.html", 404, title="No such issue", message=f"No issue dated {date} has been sent.")
        html = await run_in_threadpool(content.issue_html, date)
        return HTMLResponse(html, headers={"Content-Security-Policy": ISSUE_CSP})

    def feed_document() -> bytes:
        folder, sent = sent_in_folder()
        base = folder.newsletter.public_url
        entries = []
        for date, started in sent:
            issue = assemble(folder, date)
            entries.append(FeedEntry(issue.subject, archive_url(base, date), started, issue.preheader))
        return atom_feed(folder.newsletter, entries)

    async def feed(request: Request) -> Response:
        return Response(await run_in_threadpool(feed_document), media_type="application/atom+xml")

    # meetings, health, the stylesheet ------------------------------------------------------

    async def meeting(request: Request) -> Response:
        slug = request.path_params["slug"]
        folder = await run_in_threadpool(content.folder)
        try:
            found = find_meeting(folder, slug)
        except NotFound:
            return page("error.html", 404, title="No such meeting", message="This meeting is not in any issue.")
        return Response(
            meeting_ics(found, folder.newsletter),
            media_type="text/calendar",
            headers={"Content-Disposition": f'attachment; filename="{slug}.ics"'},
        )

    def check_database() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    async def health(request: Request) -> Response:
        try:
            await run_in_threadpool(check_database)
        except sa.exc.SQLAlchemyError as exc:
            log.error("health check: database unreachable: %s", exc)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    stylesheet = (TEMPLATES / "site.css").read_text(encoding="utf-8")

    async def css(request: Request) -> Response:
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{prefix}/archive/", status_code=302)

    routes = [
        Route("/", home),
        Route("/health", health),
        Route("/site.css", css),
        Route("/unsubscribe/{token}", token_route(unsubscribe_page), methods=["GET"]),
        Route("/unsubscribe/{token}", token_route(unsubscribe), methods=["POST"]),
        Route("/preferences/{token}", token_route(preferences_page), methods=["GET"]),
        Route("/preferences/{token}", token_route(save_preferences), methods=["POST"]),
        Route("/archive/", archive_index),
        Route("/archive/feed.atom", feed),
        Route("/archive/{date}", archive_issue),
        Route("/meetings/{slug}.ics", meeting),
    ]
    app = Starlette(routes=[Mount(prefix, routes=routes)] if prefix else routes)
    app.add_middleware(SecurityHeaders)
    return app


async def _form(request: Request) -> FormData:
    """The posted fields, urlencoded or multipart; a body with no content type is read as urlencoded."""
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return await request.form(max_files=0, max_fields=100)
    body = await request.body()
    return FormData(parse_qsl(body[:MAX_BODY].decode("utf-8", "replace"), keep_blank_values=True))
