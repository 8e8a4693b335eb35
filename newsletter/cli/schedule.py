"""Commands: schedule run (the weekly sender), schedule next (when it fires and whether each issue is ready)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import threading
from pathlib import Path

from .. import inbound
from .. import scheduler as schedule
from ..errors import ConfigError
from ..folder import load_newsletter
from ..settings import Settings
from ..store import open_store
from . import common, wiring
from . import inbound as inbound_cli
from .common import Commands


def register(commands: Commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
    top = commands.add_parser("schedule", help="the weekly send: run the scheduler, or list its next firings")
    sub = top.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND", required=True)

    run = sub.add_parser("run", help="send each issue at newsletter.yaml's schedule until stopped (also: scheduler.py)")
    common.add_dir(run)
    run.set_defaults(run=run_scheduler)

    nxt = sub.add_parser("next", help="print the next firing times and whether each one's issue passes check")
    common.add_dir(nxt)
    nxt.add_argument("--count", type=_positive, default=5, help="how many firings (default 5)")
    nxt.add_argument(
        "--after", type=_iso_datetime, help="ISO date-time to start from (default: now; no offset: the schedule's zone)"
    )
    nxt.set_defaults(run=show_next)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _iso_datetime(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date-time (e.g. 2026-11-27T09:00 or 2026-11-27T09:00+00:00)"
        ) from None


def _schedule_of(root: Path) -> schedule.Schedule:
    newsletter, _ = load_newsletter(root)
    if newsletter.schedule is None:
        raise ConfigError(
            f'{root / "newsletter.yaml"} has no schedule (e.g. schedule: {{cron: "0 9 * * fri", timezone: Europe/London}})'
        )
    return newsletter.schedule


def show_next(args: argparse.Namespace) -> int:
    plan = _schedule_of(args.dir)
    after = args.after or dt.datetime.now(plan.zone)
    if after.tzinfo is None:
        after = after.replace(tzinfo=plan.zone)
    firings = schedule.next_firings(plan, after=after, count=args.count)
    checks = schedule.check_issues(args.dir, [schedule.issue_date(at, plan.zone) for at in firings])
    for at, check in zip(firings, checks, strict=True):
        print(f"{at.isoformat()}  {at:%a}  {check.path.name}  {check.describe()}")
    return 0


def run_scheduler(args: argparse.Namespace) -> int:
    _schedule_of(args.dir)  # a folder without a schedule fails here, before the database is opened
    settings = common.settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # its per-run lines repeat ours
    runner = _runner(args.dir, settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watcher = None
    try:
        watcher = inbound_watcher(settings, runner, stop=stop)
        schedule.run(runner, grace=dt.timedelta(seconds=settings.schedule_grace_seconds), stop=stop)
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
        runner.engine.dispose()
    return 0


def inbound_watcher(config: Settings, runner: schedule.Runner, *, stop: threading.Event) -> threading.Thread | None:
    """With NEWSLETTER_INBOUND_URL set, `newsletter inbound --watch` in a started thread, ending when `stop` is set."""
    if not config.inbound_url:
        return None
    opener = inbound_cli.mailbox_opener(config)  # a bad URL fails now, not in the thread
    log = logging.getLogger("newsletter.inbound")
    thread = threading.Thread(
        target=inbound.watch,
        args=(opener, runner.engine),
        kwargs={"signer": runner.config.signer, "options": inbound_cli.options(config), "stop": stop, "log": log.info},
        name="inbound",
        daemon=True,
    )
    thread.start()
    return thread


def _runner(root: Path, config: Settings) -> schedule.Runner:
    """Everything a firing needs, made from the settings exactly as `newsletter send` makes it."""
    newsletter, _ = load_newsletter(root)
    wiring.transport(config, root)  # a bad NEWSLETTER_SMTP_URL fails now, not at the first firing
    send_config = wiring.send_config(config, root, newsletter)  # a missing key fails before the store is opened
    return schedule.Runner(
        root=root,
        engine=open_store(config.database_for(root)),
        open_transport=lambda: wiring.transport(config, root),
        config=send_config,
        newsletter=newsletter,
        warn_ahead=dt.timedelta(hours=config.schedule_warn_hours),
    )
