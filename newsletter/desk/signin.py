"""Sign-in for a desk served beyond this machine: an editor asks for a link, it is emailed (one use, 15 minutes).

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure behind HTTPS); everything but the
sign-in pages and the static files needs it, so nobody else can read a draft.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from html import escape

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..content import Newsletter
from ..message import notice
from ..transports.base import Transport
from .guard import csrf_token, remember, require_csrf

LINK_SECONDS = 15 * 60
SESSION_SECONDS = 12 * 60 * 60
SESSION_COOKIE = "desk_session"
OPEN_PATHS = ("/signin", "/static/")


class SignIn:
    """Who may sign in, how their links are signed and mailed, and which links were already used."""

    def __init__(
        self,
        secret: str,
        newsletter: Newsletter,
        *,
        url: str,
        transport: Callable[[], Transport],
        editors: Iterable[str] | None = None,
    ) -> None:
        self.links = URLSafeTimedSerializer(secret, salt="desk sign-in link")
        self.sessions = URLSafeTimedSerializer(secret, salt="desk session")
        self.newsletter = newsletter
        self.url = url.rstrip("/")  # never the request's Host: a forged Host must not end up in an editor's link
        self.secure = self.url.startswith("https://")
        self.transport = transport
        self.editors = frozenset(e.lower() for e in (editors if editors is not None else newsletter.editors))
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def link(self, email: str) -> str:
        return f"{self.url}/signin/{self.links.dumps({'e': email.lower(), 'n': secrets.token_urlsafe(12)})}"

    def redeem(self, token: str) -> str | None:
        """The editor a link signs in, once, within 15 minutes; None for a used, expired or forged link."""
        try:
            data = self.links.loads(token, max_age=LINK_SECONDS)
        except (SignatureExpired, BadSignature):
            return None
        with self._lock:
            now = time.monotonic()
            self._used = {n: t for n, t in self._used.items() if now - t < LINK_SECONDS}
            if data["n"] in self._used:
                return None
            self._used[data["n"]] = now
        return data["e"] if data["e"] in self.editors else None

    def editor(self, request: Request) -> str | None:
        try:
            email = self.sessions.loads(request.cookies.get(SESSION_COOKIE, ""), max_age=SESSION_SECONDS)
        except (SignatureExpired, BadSignature):
            return None
        return email if email in self.editors else None


class RequireEditor:
    """ASGI middleware: without an editor's session, pages redirect to /signin and posts are refused (401)."""

    def __init__(self, app: ASGIApp, *, sign_in: SignIn) -> None:
        self.app = app
        self.sign_in = sign_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.sign_in.editor(request) is None:
            response: Response = (
                RedirectResponse("/signin", status_code=303)
                if request.method in ("GET", "HEAD")
                else JSONResponse({"message": "sign in first"}, status_code=401)
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width, initial-scale=1"><title>Sign in · {name} desk</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/desk.css"></head><body><header class="top"><span class="brand">{name}</span>
<span class="tag">Editor’s desk</span></header><main class="list"><h1>Sign in</h1>{body}</main></body></html>"""


def signin_page(request: Request) -> Response:
    sign_in: SignIn = request.app.state.sign_in
    body = (
        '<form method="post" action="/signin" class="card"><input type="hidden" name="csrf" '
        f'value="{escape(csrf_token(request))}"><div class="field"><label for="email">Your email address</label>'
        '<span class="help" id="email-help">An editor listed in newsletter.yaml gets a link that signs them in, '
        'once, within 15 minutes.</span><input id="email" name="email" type="email" autocomplete="email" required '
        'aria-describedby="email-help"></div><button class="primary">Email me a link</button></form>'
    )
    return remember(request, HTMLResponse(PAGE.format(name=escape(sign_in.newsletter.name), body=body)))


async def ask_for_link(request: Request) -> Response:
    await require_csrf(request)
    sign_in: SignIn = request.app.state.sign_in
    email = str((await request.form()).get("email", "")).strip()
    if email.lower() in sign_in.editors:
        text = (
            f"Sign in to the {sign_in.newsletter.name} editor's desk with this link (it works once, "
            f"for 15 minutes):\n\n{sign_in.link(email)}\n\nIf you did not ask for it, ignore this email."
        )
        async with sign_in.transport() as transport:
            await transport.send(
                notice(sign_in.newsletter, to=email, subject="Your link to the editor's desk", text=text)
            )
    body = "<p class='card'>If that address is an editor's, a link is on its way: it works once, for 15 minutes.</p>"
    return remember(request, HTMLResponse(PAGE.format(name=escape(sign_in.newsletter.name), body=body)))


def redeem_link(request: Request) -> Response:
    sign_in: SignIn = request.app.state.sign_in
    email = sign_in.redeem(request.path_params["token"])
    if email is None:
        body = "<p class='card'>This link is used, expired or not ours. <a href='/signin'>Ask for a new one</a>.</p>"
        page = PAGE.format(name=escape(sign_in.newsletter.name), body=body)
        return remember(request, HTMLResponse(page, status_code=403))
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sign_in.sessions.dumps(email),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",  # the link is followed from a mail client: a Strict cookie would not come back on the redirect
        secure=sign_in.secure,
        path="/",
    )
    return remember(request, response)
