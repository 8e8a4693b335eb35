"""Command: serve — the web service the emails link to (unsubscribe, preferences, archive, meetings)."""

from __future__ import annotations

import argparse
import logging
import sys
from urllib.parse import urlsplit

from ..errors import ConfigError, display_path
from ..folder import load_newsletter
from ..links import archive_index_url
from ..store import open_store
from ..tokens import Signer
from .common import Commands, add_dir, settings
from .wiring import DEV_KEY_FILE, secret_key


def register(commands: Commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("serve", help="serve unsubscribe, preferences, the web archive and meeting invitations")
    add_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument(
        "--dev",
        action="store_true",
        help="without NEWSLETTER_SECRET_KEY, use the development key `send` keeps beside newsletter.yaml",
    )
    p.set_defaults(run=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..web import RedactTokens, create_app

    config = settings()
    newsletter, _ = load_newsletter(args.dir)
    if not config.secret_key and not args.dev:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY is not set: it signs the unsubscribe links (use --dev to try the server without one)"
        )
    # --dev: the development key `newsletter send` made for the outbox, so the links in those emails work here
    made_by_send = (args.dir / DEV_KEY_FILE).is_file()
    secret = secret_key(config, args.dir, smtp=False)
    if not config.secret_key and made_by_send:
        print(
            f"note: --dev: tokens are checked with the development key in {display_path(args.dir / DEV_KEY_FILE)}",
            file=sys.stderr,
        )
    engine = open_store(config.database_for(args.dir))
    app = create_app(args.dir, engine, Signer(secret))
    here = f"http://{args.host}:{args.port}{urlsplit(newsletter.public_url).path.rstrip('/')}"
    print(f"Serving {newsletter.name} for {newsletter.public_url}", file=sys.stderr)
    print(f"archive: {archive_index_url(newsletter.public_url)} (here: {archive_index_url(here)})", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)-9s %(message)s")
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    try:
        uvicorn.run(
            app, host=args.host, port=args.port, proxy_headers=True, ws="none", lifespan="off", log_level="info"
        )
    finally:
        engine.dispose()
    return 0
