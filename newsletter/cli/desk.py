"""Commands: `newsletter new` (the next issue file), `newsletter edit` (the editor's desk), `newsletter schema`."""

from __future__ import annotations

import argparse
import sys

from ..content import Newsletter
from ..desk import new_issue, write_schema
from ..desk.signin import SignIn
from ..errors import ConfigError, display_path
from ..folder import load_newsletter
from ..settings import Settings
from .common import add_dir, check_can_serve, iso_date, settings
from .wiring import send_config, store, transport


def register(commands: argparse._SubParsersAction) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("new", help="write the next issue file, dated at the next scheduled send")
    add_dir(p)
    p.add_argument("--date", type=iso_date, help="the new issue's date, YYYY-MM-DD (default: the next firing)")
    p.set_defaults(run=run_new)

    p = commands.add_parser("edit", help="serve the editor's desk on 127.0.0.1: write, check, save and test issues")
    add_dir(p)
    p.add_argument("--port", type=int, default=8001, help="port to listen on (default: 8001)")
    p.add_argument(
        "--host", help="serve beyond this machine on this address; editors then sign in with an emailed link"
    )
    p.add_argument(
        "--url", help="with --host: the desk's public address, e.g. https://desk.example.org (for the links)"
    )
    p.set_defaults(run=run_edit)

    p = commands.add_parser("schema", help="write the JSON Schema of issue files and newsletter.yaml for code editors")
    add_dir(p)
    p.set_defaults(run=run_schema)


def run_new(args: argparse.Namespace) -> int:
    path = new_issue(args.dir, date=args.date)
    print(f"wrote {display_path(path)}")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    for path in write_schema(args.dir):
        print(f"wrote {display_path(path)}")
    return 0


def _sign_in(args: argparse.Namespace, config: Settings, newsletter: Newsletter) -> SignIn:
    """What --host needs: a signing key, the desk's public URL, and editors to let in."""
    if not config.secret_key:
        raise ConfigError("--host: NEWSLETTER_SECRET_KEY is not set: it signs the sign-in links and sessions")
    if not args.url or not args.url.startswith(("https://", "http://")):
        raise ConfigError("--host needs --url, the desk's public address (https://...), for the sign-in links")
    if not newsletter.editors:
        raise ConfigError("--host: newsletter.yaml lists no `editors`: nobody could sign in")
    return SignIn(config.secret_key, newsletter, url=args.url, transport=lambda: transport(config, args.dir))


def run_edit(args: argparse.Namespace) -> int:
    import uvicorn

    from ..desk.app import create_desk_app

    host = args.host or "127.0.0.1"
    check_can_serve(args.dir, host, args.port)
    config = settings()
    newsletter, _ = load_newsletter(args.dir)
    try:
        sending = send_config(config, args.dir, newsletter)
    except ConfigError as exc:  # the desk still edits; only test copies wait for the setting
        print(f"note: Send a test is off: {exc}", file=sys.stderr)
        sending = None
    sign_in = _sign_in(args, config, newsletter) if args.host else None
    with store(config, args.dir) as engine:
        app = create_desk_app(
            args.dir,
            engine=engine,
            send_config=sending,
            transport=lambda: transport(config, args.dir),
            sign_in=sign_in,
            link_seconds=config.link_timeout_seconds,
        )
        where = args.url if sign_in else f"http://127.0.0.1:{args.port}/"
        print(f"The editor's desk at {where} (Ctrl+C to stop)", file=sys.stderr)
        uvicorn.run(app, host=host, port=args.port, log_level="warning", ws="none", proxy_headers=bool(sign_in))
    return 0
