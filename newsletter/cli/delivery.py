"""Commands: `newsletter send` (or --test, --dry-run, --retry-failed), `newsletter status` and `newsletter worker`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import sys
from collections import Counter
from collections.abc import Coroutine
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from .. import delivery, inbound, ledger
from ..delivery import SendConfig
from ..errors import NotFound, SendRefused
from ..folder import Folder, load_folder, load_newsletter
from ..message import Outgoing
from ..settings import Settings
from ..transports import MemoryTransport
from . import wiring
from .common import Commands, add_date, add_dir, iso_date, settings, today

T = TypeVar("T")


def register(commands: Commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    p = commands.add_parser("send", help="send the issue (or finish its send); --test one copy, --dry-run count only")
    add_dir(p)
    add_date(p, default="the issue due: dated today or the latest before, unless sent; --test: the newest file")
    p.add_argument(
        "--network", action="append", metavar="ID", help="send only to this network (repeatable); --test: as its reader"
    )
    p.add_argument("--yes", action="store_true", help="send an issue dated in the future without asking")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="build the messages but send and record nothing")
    mode.add_argument(
        "--test", metavar="ADDRESS", help="send one copy to ADDRESS, as a reader of every network (or of --network)"
    )
    mode.add_argument(
        "--retry-failed",
        action="store_true",
        help="queue the failed recipients of the send (of --date, default the newest) again, then send",
    )
    p.set_defaults(run=run_send)

    p = commands.add_parser("status", help="what the send of an issue did, per network, with each failure")
    add_dir(p)
    p.add_argument("--date", type=iso_date, help="issue date, YYYY-MM-DD (default: the newest send)")
    p.set_defaults(run=run_status)

    p = commands.add_parser("worker", help="an extra sender process: helps with whatever send is running")
    add_dir(p)
    p.set_defaults(run=run_worker)


def _run_until_signalled(main: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    """Run `main` with SIGINT/SIGTERM asking it to stop cleanly (claims released, results recorded)."""

    async def runner() -> T:
        loop = asyncio.get_running_loop()

        def stopping(sig: signal.Signals) -> None:
            print("stopping after the messages in flight (again to quit at once)", file=sys.stderr)
            stop.set()
            loop.remove_signal_handler(sig)  # a second signal acts as usual

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping, sig)
        return await main

    return asyncio.run(runner())


# newsletter send -------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    config = settings()
    folder = load_folder(args.dir)
    send_config = wiring.send_config(config, args.dir, folder.newsletter, dry_run=args.dry_run)
    if args.test:
        return _send_test(args, config, folder, send_config)
    with wiring.store(config, args.dir) as engine:
        if args.retry_failed:
            _retry_failed(args, engine)  # names the send it reopens when no --date is given
        now = today(folder.newsletter)
        args.date = args.date or delivery.due_date(folder, engine, today=now)
        if args.dry_run:
            return _dry_run(args, folder, engine, send_config)
        if not _confirmed(folder, engine, args, today=now):
            print(f"not sent: the issue of {args.date} waits for its date", file=sys.stderr)
            return 1
        out = wiring.transport(config, args.dir)
        stop = asyncio.Event()
        with _progress() as progress:

            async def main() -> delivery.SendSummary:
                async with out:
                    return await delivery.send_issue(
                        folder, engine, out, config=send_config, date=args.date, networks=args.network,
                        progress=progress, stop=stop,
                    )  # fmt: skip

            summary = _run_until_signalled(main(), stop)
    return _print_summary(summary, wiring.where(config, args.dir))


def _retry_failed(args: argparse.Namespace, engine: sa.Engine) -> None:
    """Queue the failed recipients of the send of --date (default: the newest send) again, and say how many."""
    send = ledger.get_send(engine, args.date) if args.date else ledger.latest_send(engine)
    if send is None:
        raise NotFound(
            f"the issue of {args.date} has not been sent: no failed recipients to retry"
            if args.date
            else "no issue has been sent yet: no failed recipients to retry"
        )
    args.date = send.issue_date
    count = ledger.requeue_failed(engine, send.id)
    print(f"requeued {count} failed recipient{'' if count == 1 else 's'} of the issue of {send.issue_date}")


def _send_test(args: argparse.Namespace, config: Settings, folder: Folder, send_config: SendConfig) -> int:
    out = wiring.transport(config, args.dir)

    async def main() -> Outgoing:
        async with out:
            return await delivery.send_test(
                folder, out, args.test, config=send_config, date=args.date, networks=args.network
            )

    message = asyncio.run(main())
    date = args.date or folder.latest_date()
    reader = f" as a reader of {', '.join(sorted(args.network))}" if args.network else ""
    print(f"sent a test copy of the issue of {date}{reader} to {message.to} {wiring.where(config, args.dir)}")
    return 0


def _confirmed(folder: Folder, engine: sa.Engine, args: argparse.Namespace, *, today: dt.date) -> bool:
    """Whether to send the issue of `args.date`: yes unless it is dated in the future and the editor says no.

    Refused without asking when it would reach nobody, or when no terminal can ask and there is no --yes.
    """
    if args.date <= today:
        return True
    audience = delivery.audience(folder, engine, date=args.date, networks=args.network).require()
    if args.yes:
        return True
    future = f"the issue of {args.date} is dated in the future ({delivery.in_days(args.date, today)})"
    if not sys.stdin.isatty():
        raise SendRefused(f"{future}: add --yes to send it now")
    sys.stderr.write(f"{future[0].upper()}{future[1:]}. Send it now to {audience.count} recipients? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _dry_run(args: argparse.Namespace, folder: Folder, engine: sa.Engine, send_config: SendConfig) -> int:
    rehearsal = delivery.rehearse(
        folder, engine, MemoryTransport(), config=send_config, date=args.date, networks=args.network
    )
    plan = asyncio.run(rehearsal)
    names = {n.id: n.name for n in folder.newsletter.networks}
    print(f"dry run: the issue of {plan.issue_date} — {plan.subject}")
    if plan.existing is not None:
        print(
            f"its send was already started: {plan.existing.done} of {plan.existing.total} done; a send now finishes the rest"
        )
    if not plan.per_variant:
        print("nobody is in its networks: a send now would be refused (`newsletter subscribers import FILE` first)")
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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")

    bar = Progress(
        TextColumn("sending"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(), console=console
    )
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
BOUNCES = tuple(inbound.BounceKind)  # bounces and complaints received later, per network


def run_status(args: argparse.Namespace) -> int:
    config = settings()
    load_newsletter(args.dir)  # refuses a wrong --dir before a database is created there
    with wiring.store(config, args.dir) as engine:
        if args.date is None:
            latest = ledger.latest_send(engine)
            if latest is None:
                raise NotFound("no issue has been sent yet")
            args.date = latest.issue_date
        report = ledger.status(engine, args.date)
        returned = inbound.bounce_counts(engine, args.date)  # what came back later, read by `newsletter inbound`
    send = report.send
    state = (
        "finished" if send.finished_at else f"paused: {send.paused_reason}" if send.paused_reason else "not finished"
    )
    print(f"the issue of {send.issue_date}: started {send.started_at:%Y-%m-%d %H:%M} UTC, {state}")
    print(f"  {'network':<24}" + "".join(f"{s:>11}" for s in STATES) + "".join(f"{k.value:>11}" for k in BOUNCES))
    for network, tally in [*report.networks.items(), ("all", report.total)]:
        came_back = returned.get(network, {})
        print(
            f"  {network:<24}"
            + "".join(f"{tally[s]:>11}" for s in STATES)
            + "".join(f"{came_back.get(k, 0):>11}" for k in BOUNCES)
        )
    if report.requeued.total and report.requeued_at:
        now = ", ".join(f"{n} {s}" for s in STATES if (n := report.requeued.counts[s]))
        print(
            f"requeued {report.requeued.total} failed recipients with --retry-failed"
            f" (last on {report.requeued_at:%Y-%m-%d %H:%M} UTC); of them now: {now}"
        )
    if report.failures:
        print(f"failures ({len(report.failures)}):")
        for failure in report.failures:
            print(
                f"  {failure.email}  [{', '.join(sorted(failure.networks))}]  after {failure.attempts} attempt(s): {failure.reply}"
            )
    return 0


# newsletter worker -----------------------------------------------------------------------------


def run_worker(args: argparse.Namespace) -> int:
    config = settings()
    newsletter, _ = load_newsletter(args.dir)
    send_config = wiring.send_config(config, args.dir, newsletter)

    def log(line: str) -> None:
        print(f"{dt.datetime.now().astimezone():%H:%M:%S} worker {os.getpid()}: {line}", file=sys.stderr, flush=True)

    with wiring.store(config, args.dir) as engine:
        out = wiring.transport(config, args.dir)
        stop = asyncio.Event()

        async def main() -> Counter[str]:
            async with out:
                return await delivery.work(engine, args.dir, out, config=send_config, stop=stop, log=log)

        done = _run_until_signalled(main(), stop)
    log(f"stopped; sent {done['sent']}, failed {done['failed']}")
    return 0
