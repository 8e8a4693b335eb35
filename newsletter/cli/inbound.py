"""Commands: `newsletter inbound [--watch]` reads the bounce mailbox; `newsletter bounces [--since D]` lists what it kept."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
from collections.abc import Callable

from .. import inbound
from ..errors import ConfigError
from ..folder import load_newsletter
from ..inbound import bounces
from ..settings import Settings
from ..store import open_store
from ..tokens import Signer
from .common import Commands, add_dir, iso_date, settings
from .wiring import secret_key


def register(commands: Commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser(
        "inbound", help="read the bounce mailbox (NEWSLETTER_INBOUND_URL): bounces, complaints, unsubscribes"
    )
    add_dir(p)
    p.add_argument(
        "--watch", action="store_true", help="keep reading: at once on new mail (IMAP IDLE), else every minute"
    )
    p.set_defaults(run=run_inbound)

    p = commands.add_parser("bounces", help="the bounces and complaints kept, oldest first")
    add_dir(p)
    p.add_argument("--since", type=iso_date, metavar="DATE", help="only those received on or after DATE (YYYY-MM-DD)")
    p.set_defaults(run=run_bounces)


def options(config: Settings) -> inbound.Options:
    return inbound.Options(
        bounce_address=config.bounce_address,
        unsubscribe_address=config.unsubscribe_address,
        soft_bounce_limit=config.soft_bounce_limit,
        soft_bounce_days=config.soft_bounce_days,
    )


def mailbox_opener(config: Settings) -> Callable[[], inbound.Mailbox]:
    """What opens NEWSLETTER_INBOUND_URL, its URL checked now (for `schedule run` too)."""
    if not config.inbound_url:
        raise ConfigError(
            "NEWSLETTER_INBOUND_URL is not set: give the bounce mailbox, e.g. imaps://user:pass@host/INBOX"
        )
    url = config.inbound_url
    inbound.open_mailbox(url)
    return lambda: inbound.open_mailbox(url)


def run_inbound(args: argparse.Namespace) -> int:
    config = settings()
    load_newsletter(args.dir)  # refuses a wrong --dir before a database is created there
    opener = mailbox_opener(config)
    signer = Signer(secret_key(config, args.dir, smtp=bool(config.smtp_url)))
    engine = open_store(config.database_for(args.dir))
    try:
        if args.watch:
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            inbound.watch(opener, engine, signer=signer, options=options(config), stop=stop, log=_log)
            return 0
        with opener() as box:
            report = inbound.process(box, engine, signer=signer, options=options(config))
    finally:
        engine.dispose()
    for line in report.changes:
        print(line)
    for line in report.problems:
        print(f"warning: {line}", file=sys.stderr)
    print(report.summary())
    return 0


def _log(line: str) -> None:
    print(f"{dt.datetime.now().astimezone():%H:%M:%S} inbound: {line}", file=sys.stderr, flush=True)


def run_bounces(args: argparse.Namespace) -> int:
    config = settings()
    load_newsletter(args.dir)
    since = dt.datetime.combine(args.since, dt.time(), dt.UTC) if args.since else None
    engine = open_store(config.database_for(args.dir))
    try:
        rows = [
            (
                f"{b.received_at:%Y-%m-%d %H:%M}",
                b.email,
                b.kind.value,
                b.status or "",
                str(b.issue_date or ""),
                b.diagnostic or "",
            )
            for b in bounces.listing(engine, since=since)
        ]
    finally:
        engine.dispose()
    table = [("RECEIVED", "EMAIL", "KIND", "STATUS", "ISSUE", "SERVER SAID"), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[5][:100])
    print(f"{len(rows)} bounce(s) and complaint(s)")
    return 0
