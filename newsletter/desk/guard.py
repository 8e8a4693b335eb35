"""What guards the desk: it answers only a local Host, and every POST carries the session's CSRF token."""

from __future__ import annotations

import hmac
import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
CSRF_COOKIE = "desk_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
DESK_CSP = (  # the email is shown in srcdoc frames, which inherit this policy: its inline styles and https images
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class LocalHostOnly:
    """ASGI middleware: 421 for a Host header that is not this machine's (a DNS-rebinding page's, say)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOCAL_HOSTS:
                await PlainTextResponse("this desk answers only on localhost", status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The session's token: the cookie's, or a new one the response must set (see `remember`)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = request.state.new_csrf = secrets.token_urlsafe(32)
    return token


def remember(request: Request, response: Response) -> Response:
    """Set the CSRF cookie on `response` if this request made the token; security headers too."""
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path="/")
    response.headers.setdefault("Content-Security-Policy", DESK_CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def require_csrf(request: Request) -> None:
    """403 unless the request's header or form field carries the cookie's token."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        given = str((await request.form()).get(CSRF_FIELD, ""))
    if not expected or not hmac.compare_digest(expected, given):
        raise HTTPException(403, "the form's security token is missing or stale: reload the page")
