"""Command: serve — the web service the emails link to (unsubscribe, preferences, archive, meetings)."""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import ConfigError
from ..folder import load_newsletter
from ..links import archive_index_url
from ..store import open_store
from ..tokens import Signer
from .common import add_dir, settings

DEV_KEY = "newsletter-development-key-not-secret"


def register(commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("serve", help="serve unsubscribe, preferences, the web archive and meeting invitations")
    add_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--dev", action="store_true", help="allow running without NEWSLETTER_SECRET_KEY (a fixed, public key)")
    p.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web import RedactTokens, create_app

    config = settings()
    secret = config.secret_key
    if not secret:
        if not args.dev:
            raise ConfigError("NEWSLETTER_SECRET_KEY is not set: it signs the unsubscribe links (use --dev to try the server without one)")
        secret = DEV_KEY
        print("warning: --dev: tokens are signed with a fixed development key; links in real emails will not work", file=sys.stderr)
    newsletter, _ = load_newsletter(args.dir)
    engine = open_store(config.database_for(args.dir))
    app = create_app(args.dir, engine, Signer(secret))
    print(f"Serving {newsletter.name}: archive at {archive_index_url(newsletter.public_url)}", file=sys.stderr)
    print(f"Listening on http://{args.host}:{args.port} (put it behind the HTTPS proxy for {newsletter.public_url})", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)-9s %(message)s")
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    try:
        uvicorn.run(app, host=args.host, port=args.port, proxy_headers=True, ws="none", lifespan="off", log_level="info")
    finally:
        engine.dispose()
    return 0
