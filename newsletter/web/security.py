"""What guards the web service: security headers, tokens kept out of logs, the bad-token limit, the token checks."""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import subscribers
from ..errors import BadToken
from ..subscribers import Subscriber
from ..tokens import Signer
from .pages import Refusal

MAX_ID = 2**31 - 1  # subscribers.id is a 32-bit INTEGER on PostgreSQL
MAX_BODY = 64 * 1024  # a form of ours is well under 1 KB; BodyLimit holds every request to this

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


class SecurityHeaders:
    """ASGI middleware: the headers above on every response (a route may set its own CSP or Referrer-Policy)."""

    def __init__(self, app: ASGIApp) -> None:
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


class RelativeRedirects:
    """ASGI middleware: a redirect to any origin but our public one goes out as a path, never to the request's Host."""

    def __init__(self, app: ASGIApp, *, public_origin: str) -> None:
        self.app = app
        self.public_origin = public_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                target = urlsplit(headers.get("location", ""))
                if target.netloc and f"{target.scheme}://{target.netloc}".lower() != self.public_origin:
                    # one leading slash: "//host/…" would be read as another site
                    path = "/" + target.path.lstrip("/\\")
                    headers["location"] = urlunsplit(("", "", path, target.query, target.fragment))
            await send(message)

        await self.app(scope, receive, send_relative)


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

    def __init__(self, limit: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
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


@dataclass(frozen=True)
class Verified:
    """The subscriber a path's token was made for, and that token."""

    subscriber: Subscriber
    token: str


def client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def verify(request: Request, *, any_age: bool = False) -> Verified:
    """The subscriber the path's token was made for, or Refusal (and the bad token counted against the client).

    With `any_age`, an authentic token is good however old: unsubscribing works as long as the reader has the email.
    """
    state = request.app.state
    address = client(request)
    if state.limiter.blocked(address):
        raise Refusal(
            429, "Too many attempts", "Too many links that do not work came from your address: try again in a minute."
        )
    token = request.path_params["token"]
    try:
        claims = Signer.peek(token)
        if claims.subscriber_id > MAX_ID:  # out of the column's range: it cannot be ours
            raise BadToken("unknown subscriber")
        found = subscribers.by_id(state.engine, claims.subscriber_id)
        if found is None:
            raise BadToken("unknown subscriber")
        state.signer.authentic(token, found.email)
    except BadToken:
        state.limiter.record(address)
        raise Refusal(
            400, "This link does not work", "It may have been cut short or changed. Use the link in a recent email."
        ) from None
    if not any_age and state.signer.expired(claims):
        raise Refusal(
            400,
            "This link has expired",
            "Use the unsubscribe link in any of our emails, or reply to one to ask for a new link.",
        )
    return Verified(found, token)


def form_key(signer: Signer, token: str, subscriber_id: int) -> str:
    """The preferences form's anti-forgery field: a keyed MAC of the token, made with the signer's secret."""
    return signer.sign(subscriber_id, f"preferences-form {token}", issued=0)


def same_origin(request: Request) -> bool:
    """The form was posted by a page of ours: Origin (or else Referer) is our public or served origin."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or sent == "null":
        return False
    parts = urlsplit(sent)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    served = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    return origin in (request.app.state.public_origin, served)


def posted(handler: Callable[[Request, FormData], Response]) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint for a form: the body (capped by BodyLimit) is read on the event loop, the handler in a thread."""

    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(handler, request, await read_form(request))

    return endpoint


async def read_form(request: Request) -> FormData:
    """The posted fields, urlencoded or multipart; a body with no content type is read as urlencoded."""
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return await request.form(max_files=0, max_fields=100)
    text = (await request.body()).decode("utf-8", "replace")
    fields: list[tuple[str, str | UploadFile]] = list(parse_qsl(text, keep_blank_values=True))
    return FormData(fields)
