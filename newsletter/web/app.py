"""The web service as one Starlette app: the route table, the middleware, the refusal handler and the app's state."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from ..asgi import BodyLimit
from ..tokens import Signer
from . import archive, images, subscription
from .pages import Content, Refusal, css, health, home, refused, stylesheet, templates
from .security import MAX_BODY, BadTokenLimiter, RelativeRedirects, SecurityHeaders

ROUTES: list[BaseRoute] = [
    Route("/", home),
    Route("/health", health),
    Route("/site.css", css),
    Route("/unsubscribe/{token}", subscription.unsubscribe_page, methods=["GET"]),
    Route("/unsubscribe/{token}", subscription.unsubscribe, methods=["POST"]),
    Route("/preferences/{token}", subscription.preferences_page, methods=["GET"]),
    Route("/preferences/{token}", subscription.save_preferences, methods=["POST"]),
    Route("/archive/", archive.archive_index),
    Route("/archive/feed.atom", archive.feed),
    Route("/archive/{date}", archive.archive_issue),
    Route("/meetings/{slug}.ics", archive.meeting),
    Route("/images/{file}", images.picture),
]


def create_app(root: Path, engine: sa.Engine, signer: Signer, *, rate_limit: int = 20) -> Starlette:
    """The ASGI app for the folder at `root`, mounted under the path of its public_url.

    `rate_limit` is how many bad tokens one client address may present a minute before it gets 429s.
    """
    content = Content(root)
    public = urlsplit(content.folder().newsletter.public_url)
    prefix = public.path.rstrip("/")
    public_origin = f"{public.scheme}://{public.netloc}".lower()
    app = Starlette(
        routes=[Mount(prefix, routes=ROUTES)] if prefix else ROUTES,
        middleware=[
            Middleware(BodyLimit, limit=MAX_BODY),
            Middleware(SecurityHeaders),
            Middleware(RelativeRedirects, public_origin=public_origin),
        ],
        exception_handlers={Refusal: refused},
    )
    app.state.content = content
    app.state.engine = engine
    app.state.signer = signer
    app.state.limiter = BadTokenLimiter(rate_limit)
    app.state.prefix = prefix
    app.state.public_origin = public_origin
    app.state.templates = templates()
    app.state.stylesheet = stylesheet()
    return app
