"""Commands: `newsletter send` (or --test, --dry-run), `newsletter status` and `newsletter worker`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from .. import delivery, ledger
from ..content import Newsletter
from ..delivery import DeliveryOptions
from ..dkim import DKIMKey
from ..errors import ConfigError, NotFound, display_path
from ..folder import load_folder, load_newsletter
from ..settings import Settings
from ..store import open_store
from ..tokens import Signer
from ..transports import MemoryTransport, open_transport
from .common import add_date, add_dir, iso_date, settings

DEV_KEY_FILE = ".secret_key"


def register(commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("send", help="send the issue (or finish its send); --test one copy, --dry-run count only")
    add_dir(p)
    add_date(p)
    p.add_argument("--network", action="append", metavar="ID", help="send only to this network (repeatable)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="build the messages but send and record nothing")
    mode.add_argument("--test", metavar="ADDRESS", help="send one copy, as a reader of every network, to ADDRESS")
    p.set_defaults(run=run_send)

    p = commands.add_parser("status", help="what the send of an issue did, per network, with each failure")
    add_dir(p)
    p.add_argument("--date", type=iso_date, help="issue date, YYYY-MM-DD (default: the newest send)")
    p.set_defaults(run=run_status)

    p = commands.add_parser("worker", help="an extra sender process: helps with whatever send is running")
    add_dir(p)
    p.set_defaults(run=run_worker)


# what every command needs --------------------------------------------------------------------


def secret_key(config: Settings, root: Path, *, smtp: bool) -> str:
    """NEWSLETTER_SECRET_KEY; without it, for the outbox only, a development key kept beside newsletter.yaml."""
    if config.secret_key:
        return config.secret_key
    if smtp:
        raise ConfigError("NEWSLETTER_SECRET_KEY is not set: it signs the unsubscribe links, so mail cannot go out without it")
    path = Path(root) / DEV_KEY_FILE
    if not path.exists():
        # Written whole under another name, then linked into place: a concurrent run never reads half a key.
        draft = path.with_name(f"{DEV_KEY_FILE}.{os.getpid()}.tmp")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(draft, path)
            print(f"note: no NEWSLETTER_SECRET_KEY set: generated a development key in {display_path(path)}", file=sys.stderr)
        except FileExistsError:
            pass  # another run made it first: use theirs
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{display_path(path)} is empty: delete it to get a new development key")
    return key


def dkim_key(config: Settings, newsletter: Newsletter) -> DKIMKey | None:
    if not config.dkim_key_file:
        if config.dkim_ed25519_key_file:
            raise ConfigError("NEWSLETTER_DKIM_ED25519_KEY_FILE is set but NEWSLETTER_DKIM_KEY_FILE is not: Ed25519 signs beside RSA")
        return None
    if not config.dkim_selector:
        raise ConfigError("NEWSLETTER_DKIM_KEY_FILE is set but NEWSLETTER_DKIM_SELECTOR is not")
    domain = config.dkim_domain or newsletter.sender.email.rpartition("@")[2]
    return DKIMKey.load(config.dkim_key_file, config.dkim_selector, domain, ed25519=config.dkim_ed25519_key_file)


def options(config: Settings) -> DeliveryOptions:
    return DeliveryOptions(
        concurrency=config.smtp_pool,
        retry_base=config.retry_base_seconds,
        max_attempts=config.max_attempts,
        pause_after_errors=config.pause_after_errors,
        lease=config.lease_seconds,
        per_hour=config.rate_per_hour,
    )


def transport(config: Settings, root: Path):
    return open_transport(
        config.smtp_url,
        outbox=config.outbox_for(root),
        pool_size=config.smtp_pool,
        verify=config.smtp_verify,
        rate_per_second=config.rate_per_second,
    )


@contextmanager
def _store(config: Settings, root: Path) -> Iterator[sa.Engine]:
    engine = open_store(config.database_for(root))
    try:
        yield engine
    finally:
        engine.dispose()


def _run_until_signalled(main, stop: asyncio.Event):
    """Run `main` with SIGINT/SIGTERM asking it to stop cleanly (claims released, results recorded)."""

    async def runner():
        loop = asyncio.get_running_loop()

        def stopping(sig: signal.Signals) -> None:
            print("stopping after the messages in flight (again to quit at once)", file=sys.stderr)
            stop.set()
            loop.remove_signal_handler(sig)  # a second signal acts as usual

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping, sig)
        return await main

    return asyncio.run(runner())


def _where(config: Settings, root: Path) -> str:
    return "over SMTP" if config.smtp_url else f"to the outbox folder {display_path(config.outbox_for(root))}"


# newsletter send -------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    config = settings()
    folder = load_folder(args.dir)
    smtp = bool(config.smtp_url) and not args.dry_run
    signer = Signer(secret_key(config, args.dir, smtp=smtp) if not args.dry_run or config.secret_key else secrets.token_hex(16))
    dkim = dkim_key(config, folder.newsletter)
    if args.test:
        return _send_test(args, config, folder, signer, dkim)
    with _store(config, args.dir) as engine:
        if args.dry_run:
            return _dry_run(args, folder, engine, signer, dkim)
        out = transport(config, args.dir)
        stop = asyncio.Event()
        with _progress() as progress:

            async def main():
                try:
                    return await delivery.send_issue(
                        folder, engine, out, signer=signer, date=args.date, networks=args.network, options=options(config),
                        dkim=dkim, bounce_address=config.bounce_address, progress=progress, stop=stop,
                    )  # fmt: skip
                finally:
                    await out.close()

            summary = _run_until_signalled(main(), stop)
    return _print_summary(summary, _where(config, args.dir))


def _send_test(args, config: Settings, folder, signer: Signer, dkim) -> int:
    out = transport(config, args.dir)

    async def main():
        try:
            return await delivery.send_test(folder, out, args.test, signer=signer, date=args.date, dkim=dkim)
        finally:
            await out.close()

    message = asyncio.run(main())
    print(f"sent a test copy of the issue of {args.date or folder.latest_date()} to {message.to} {_where(config, args.dir)}")
    return 0


def _dry_run(args, folder, engine: sa.Engine, signer: Signer, dkim) -> int:
    plan = asyncio.run(
        delivery.rehearse(folder, engine, MemoryTransport(), signer=signer, date=args.date, networks=args.network, dkim=dkim)
    )
    names = {n.id: n.name for n in folder.newsletter.networks}
    print(f"dry run: the issue of {plan.issue_date} — {plan.subject}")
    if plan.existing is not None:
        print(f"its send was already started: {plan.existing.done} of {plan.existing.total} done; a send now finishes the rest")
    print(f"{sum(plan.per_variant.values())} recipients; per network (a reader of several counts in each):")
    for network in sorted(plan.networks):
        print(f"  {network:<24} {plan.per_network[network]:>7}  {names.get(network, '')}")
    print(f"{len(plan.per_variant)} variants (sets of networks), each rendered once:")
    for variant, count in sorted(plan.per_variant.items(), key=lambda kv: (-kv[1], sorted(kv[0]))):
        print(f"  {count:>7} × {', '.join(sorted(variant))}  ({plan.sizes[variant] / 1024:.0f} KB a message)")
    print("nothing was sent or recorded")
    return 0


@contextmanager
def _progress():
    """A rich progress bar with rate and ETA when stderr is a terminal; else no bar."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")

    bar = Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(), console=console)
    task = bar.add_task("send", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_summary(summary: delivery.SendSummary, where: str) -> int:
    tally, run = summary.tally, summary.this_run
    print(
        f"the issue of {summary.issue_date} ({len(summary.networks)} networks, {tally.total} recipients) {where}: "
        f"{tally['sent']} sent, {tally['failed']} failed, {tally['suppressed']} suppressed"
    )
    print(
        f"this run: {run['sent']} sent, {run['deferred']} retries, {run['failed']} failed"
        f" ({run['bounced']} marked bounced), {run['suppressed']} suppressed, in {summary.elapsed:.1f} s"
    )
    if summary.finished:
        return 0
    print(f"not finished: {tally.open} left; run the send again to finish it", file=sys.stderr)
    return 1


# newsletter status -----------------------------------------------------------------------------


STATES = ("sent", "deferred", "failed", "suppressed", "queued", "sending")


def run_status(args: argparse.Namespace) -> int:
    config = settings()
    load_newsletter(args.dir)  # refuses a wrong --dir before a database is created there
    with _store(config, args.dir) as engine:
        if args.date is None:
            latest = ledger.latest_send(engine)
            if latest is None:
                raise NotFound("no issue has been sent yet")
            args.date = latest.issue_date
        report = ledger.status(engine, args.date)
    send = report.send
    state = "finished" if send.finished_at else f"paused: {send.paused_reason}" if send.paused_reason else "not finished"
    print(f"the issue of {send.issue_date}: started {send.started_at:%Y-%m-%d %H:%M} UTC, {state}")
    print(f"  {'network':<24}" + "".join(f"{s:>11}" for s in STATES))
    for network, tally in [*report.networks.items(), ("all", report.total)]:
        print(f"  {network:<24}" + "".join(f"{tally[s]:>11}" for s in STATES))
    if report.failures:
        print(f"failures ({len(report.failures)}):")
        for failure in report.failures:
            print(f"  {failure.email}  [{', '.join(sorted(failure.networks))}]  after {failure.attempts} attempt(s): {failure.reply}")
    return 0


# newsletter worker -----------------------------------------------------------------------------


def run_worker(args: argparse.Namespace) -> int:
    config = settings()
    newsletter, _ = load_newsletter(args.dir)
    signer = Signer(secret_key(config, args.dir, smtp=bool(config.smtp_url)))
    dkim = dkim_key(config, newsletter)

    def log(line: str) -> None:
        print(f"{dt.datetime.now():%H:%M:%S} worker {os.getpid()}: {line}", file=sys.stderr, flush=True)

    with _store(config, args.dir) as engine:
        out = transport(config, args.dir)
        stop = asyncio.Event()

        async def main():
            try:
                return await delivery.work(
                    engine, args.dir, out, signer=signer, options=options(config), dkim=dkim,
                    bounce_address=config.bounce_address, stop=stop, log=log,
                )  # fmt: skip
            finally:
                await out.close()

        done = _run_until_signalled(main(), stop)
    log(f"stopped; sent {done['sent']}, failed {done['failed']}")
    return 0
