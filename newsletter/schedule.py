"""The weekly send: when newsletter.yaml's schedule fires, and what one firing does.

A firing checks the issue dated that day in the schedule's time zone: a valid one is sent as
`newsletter send` would; a missing or invalid one is not, and the editor is told. APScheduler
keeps the job in the subscribers' database, so a firing missed while no scheduler ran is caught
up on restart within a grace period; the delivery ledger's one send per issue date makes a
second firing (a second scheduler, the autumn's repeated hour) a no-op instead of a second send.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from . import delivery, ledger
from .checks import check
from .content import Newsletter, Schedule
from .delivery import SendConfig
from .errors import ConfigError, ContentError, NewsletterError, Problem
from .folder import Folder, load_folder, load_newsletter
from .message import notice
from .tokens import Signer
from .transports import Transport

log = logging.getLogger(__name__)

JOB_ID = "weekly-issue"
JOBS_TABLE = "apscheduler_jobs"
DEFAULT_GRACE = dt.timedelta(hours=6)


# when it fires -------------------------------------------------------------------------------


def cron_trigger(schedule: Schedule) -> CronTrigger:
    return CronTrigger.from_crontab(schedule.cron, timezone=schedule.zone)


def local(at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """`at` on the zone's wall clock with its true offset (a cron time inside the spring gap moves past it)."""
    return at.astimezone(dt.timezone.utc).astimezone(zone)


def repeated_hour(at: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether `at` falls in the second pass of the autumn's repeated hour, a wall time cron already fired at."""
    wall = local(at, zone)
    return wall.fold == 1 and wall.replace(fold=0).utcoffset() != wall.utcoffset()


def next_firings(schedule: Schedule, *, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next `count` firing times strictly after `after`, on the schedule's wall clock with their offsets."""
    if after.tzinfo is None:
        raise ValueError("`after` must carry a time zone")
    trigger = cron_trigger(schedule)
    firings: list[dt.datetime] = []
    previous = None
    now = after + dt.timedelta(microseconds=1)
    while len(firings) < count:
        at = trigger.get_next_fire_time(previous, now)
        if at is None:
            break
        previous = now = at
        if at > after and not repeated_hour(at, schedule.zone):
            firings.append(local(at, schedule.zone))
    return firings


def issue_date(at: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The date of the issue a firing at `at` sends: that day in the schedule's time zone."""
    return local(at, zone).date()


# whether its issue is ready --------------------------------------------------------------------


@dataclass(frozen=True)
class IssueCheck:
    """Whether the issue file of `date` exists and passes `check`: `problems` in the file, `elsewhere` in others.

    An error anywhere in the folder stops a send, as it stops `newsletter send`; `warnings` do not.
    """

    date: dt.date
    path: Path
    exists: bool
    problems: tuple[Problem, ...] = ()
    elsewhere: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems and not self.elsewhere

    def describe(self) -> str:
        if not self.exists:
            return f"no issue file ({self.path.name} missing)"
        if self.problems:
            return f"{_errors(self.problems)} {self.problems[0]}"
        if self.elsewhere:
            return f"blocked by {_errors(self.elsewhere)[:-1]} in other files: {self.elsewhere[0]}"
        if self.warnings:
            return f"ok, {len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''} (newsletter check --date {self.date})"
        return "ok"


def _errors(problems: tuple[Problem, ...]) -> str:
    return f"{len(problems)} error{'s' if len(problems) > 1 else ''}:"


def _issue_path(root: Path, date: dt.date) -> Path:
    folder = root / "content" / "issues"
    for suffix in (".yaml", ".yml"):
        if (folder / f"{date}{suffix}").is_file():
            return folder / f"{date}{suffix}"
    return folder / f"{date}.yaml"


def check_issues(root: Path | str, dates: Iterable[dt.date]) -> list[IssueCheck]:
    """Check the issue of each date as `newsletter check` would; a firing sends only an issue that passes."""
    root = Path(root)
    try:
        folder: Folder | None = load_folder(root)
        folder_problems: tuple[Problem, ...] = ()
    except ContentError as exc:
        folder, folder_problems = None, tuple(p for p in exc.problems if p.severity == "error")
    checks = []
    for date in dates:
        path = _issue_path(root, date)
        if not path.is_file():
            checks.append(IssueCheck(date, path, False))
            continue
        if folder is None:
            own = tuple(p for p in folder_problems if Path(p.path).resolve() == path.resolve())
            checks.append(IssueCheck(date, path, True, own, tuple(p for p in folder_problems if p not in own)))
            continue
        try:
            warnings = tuple(check(folder, date=date))
        except NewsletterError as exc:
            checks.append(IssueCheck(date, path, True, (Problem(path, None, "", str(exc)),)))
            continue
        checks.append(IssueCheck(date, path, True, warnings=warnings))
    return checks


# what one firing does ----------------------------------------------------------------------------


class Outcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already sent"  # the ledger has this date's send: a second firing, or sent by hand
    NO_ISSUE = "no issue"
    INVALID = "invalid"
    FAILED = "failed"  # the send started and stopped (paused, relay refused...)
    MISSED = "missed"  # the scheduler was down beyond the grace period
    STOPPED = "stopped"  # the scheduler was stopped mid-send: its next start resumes it
    REPEAT = "repeat"  # the autumn's repeated hour: this wall time fired an hour ago


@dataclass(frozen=True)
class FiringResult:
    at: dt.datetime
    date: dt.date
    outcome: Outcome
    detail: str
    summary: Any = None  # the delivery engine's summary, when a send ran
    told: str | None = None  # the address the editor was emailed at, if they were

    def __str__(self) -> str:
        return f"firing {self.at.isoformat()} (issue {self.date}): {self.outcome}: {self.detail}"


def editor_address(newsletter: Newsletter) -> str:
    return str(newsletter.reply_to or newsletter.sender.email)


async def tell_editor(newsletter: Newsletter, transport: Transport, *, subject: str, text: str) -> str | None:
    """Email the editor (reply_to, else the sender) through `transport`; the address, or None if that failed too."""
    to = editor_address(newsletter)
    try:
        await transport.send(notice(newsletter, to=to, subject=subject, text=text))
    except Exception:  # the notice is the last resort: its failure goes to the log, not up
        log.exception("could not email the editor at %s", to)
        return None
    return to


async def tell_editor_once(
    engine: sa.Engine, newsletter: Newsletter, transport: Transport, *, at: dt.datetime, date: dt.date, outcome: Outcome,
    subject: str, text: str,
) -> str | None:
    """tell_editor, unless the ledger shows this firing's notice was already sent (a second scheduler, a retry)."""
    if not ledger.first_notice(engine, firing_at=at, kind=outcome.value, issue_date=date):
        log.info("the editor was already told about the firing at %s (%s)", at.isoformat(), outcome.value)
        return None
    return await tell_editor(newsletter, transport, subject=subject, text=text)


def _problem_lines(problems: Iterable[Problem]) -> str:
    return "\n".join(f"  {p}" for p in problems)


async def fire(
    root: Path | str,
    engine: sa.Engine,
    transport: Transport,
    *,
    signer: Signer,
    at: dt.datetime,
    send_options: Mapping[str, Any] | None = None,
    known: Newsletter | None = None,
    date: dt.date | None = None,
    stop: asyncio.Event | None = None,
) -> FiringResult:
    """One firing due at `at`: send the issue dated that day, or tell the editor why not.

    `send_options` are send_issue's keywords as `newsletter send` passes them (options, dkim,
    bounce_address). `known` is the newsletter as the scheduler started with it, so the editor can
    still be told when newsletter.yaml itself no longer loads. `date` names the issue instead of
    `at` (resuming an interrupted send); `stop` set ends the send early, cleanly, to be resumed.
    """
    root = Path(root)
    try:
        newsletter, _ = load_newsletter(root)
    except ContentError as exc:
        newsletter = known
        if newsletter is None or newsletter.schedule is None:
            result = FiringResult(at, at.date(), Outcome.INVALID, f"newsletter.yaml has errors: {exc.problems[0]}")
            log.error("%s", result)
            return result
    zone = newsletter.schedule.zone if newsletter.schedule else ZoneInfo("UTC")
    when = local(at, zone)
    if date is None and repeated_hour(at, zone):
        return _logged(FiringResult(at, issue_date(at, zone), Outcome.REPEAT, "this wall-clock time already fired an hour ago"))
    date = date or issue_date(at, zone)
    if already_sent(engine, date):
        return _logged(FiringResult(at, date, Outcome.ALREADY_SENT, "the ledger has this issue's send, finished"))

    [check] = check_issues(root, [date])
    if not check.ok:
        outcome = Outcome.NO_ISSUE if not check.exists else Outcome.INVALID
        subject = f"Not sent: {'no issue for' if not check.exists else 'errors in the issue of'} {date:%A} {date.day} {date:%B %Y}"
        if not check.exists:
            text = (
                f"The scheduled send at {when:%H:%M %Z} on {date:%A} {date.day} {date:%B %Y} found no issue file:"
                f"\n  {check.path}\n\nNothing was sent. Write the file, run `newsletter check`, then"
                f" `newsletter send --date {date}`."
            )
        else:
            text = (
                f"The scheduled send at {when:%H:%M %Z} on {date:%A} {date.day} {date:%B %Y} found errors, so nothing"
                f" was sent:\n{_problem_lines(check.problems + check.elsewhere)}\n\nFix them, run `newsletter check`, then"
                f" `newsletter send --date {date}`."
            )
        told = await tell_editor_once(engine, newsletter, transport, at=at, date=date, outcome=outcome, subject=subject, text=text)
        return _logged(FiringResult(at, date, outcome, check.describe(), told=told), level=logging.ERROR)

    try:
        summary = await delivery.send_issue(load_folder(root), engine, transport, date=date, stop=stop,
                                            config=SendConfig(signer, **(send_options or {})))
    except ContentError as exc:  # the folder changed between the check and the send
        told = await tell_editor_once(engine, newsletter, transport, at=at, date=date, outcome=Outcome.INVALID,
                                      subject=f"Not sent: errors in the issue of {date}",
                                      text=f"Nothing was sent:\n{_problem_lines(exc.problems)}")
        return _logged(FiringResult(at, date, Outcome.INVALID, str(exc.problems[0]), told=told), level=logging.ERROR)
    except NewsletterError as exc:
        text = (
            f"The scheduled send of the issue of {date} stopped: {exc}\n\n"
            f"See `newsletter status --date {date}`; `newsletter send --date {date}` resumes it without sending twice."
        )
        told = await tell_editor_once(engine, newsletter, transport, at=at, date=date, outcome=Outcome.FAILED,
                                      subject=f"Send stopped: issue of {date}", text=text)
        return _logged(FiringResult(at, date, Outcome.FAILED, str(exc), told=told), level=logging.ERROR)
    counts = ", ".join(f"{summary.this_run[k]} {k}" for k in ("sent", "failed", "suppressed", "deferred") if summary.this_run[k])
    if not summary.finished and stop is not None and stop.is_set():
        detail = f"{counts or 'nothing sent'}; stopped with the scheduler, its next start resumes the send"
        return _logged(FiringResult(at, date, Outcome.STOPPED, detail, summary=summary), level=logging.WARNING)
    detail = f"{counts or 'nothing left to send'}; the send is {'finished' if summary.finished else 'not finished'}"
    return _logged(FiringResult(at, date, Outcome.SENT, detail, summary=summary))


async def missed(
    root: Path | str,
    engine: sa.Engine,
    transport: Transport,
    *,
    at: dt.datetime,
    late: dt.timedelta,
    known: Newsletter,
) -> FiringResult:
    """A firing found `late` past its grace period: nothing is sent automatically, and the editor is told."""
    try:
        newsletter, _ = load_newsletter(Path(root))
    except ContentError:
        newsletter = known
    zone = newsletter.schedule.zone if newsletter.schedule else known.schedule.zone
    date = issue_date(at, zone)
    if ledger.get_send(engine, date) is not None:
        return _logged(FiringResult(at, date, Outcome.ALREADY_SENT, "missed, but the ledger has this issue's send"))
    hours = late.total_seconds() / 3600
    text = (
        f"The scheduled send at {local(at, zone):%H:%M %Z} on {date:%A} {date.day} {date:%B %Y} was missed: no"
        f" scheduler was running until {hours:.1f} hours later, past the grace period. Nothing was sent.\n\n"
        f"To send it now: `newsletter send --date {date}`."
    )
    told = await tell_editor_once(engine, newsletter, transport, at=at, date=date, outcome=Outcome.MISSED,
                                  subject=f"Not sent: the scheduled send of {date} was missed", text=text)
    return _logged(FiringResult(at, date, Outcome.MISSED, f"missed by {late}", told=told), level=logging.ERROR)


def already_sent(engine: sa.Engine, date: dt.date) -> bool:
    """Whether the ledger has a finished send of the issue of `date` (an unfinished one is resumed instead)."""
    send = ledger.get_send(engine, date)
    return send is not None and send.finished_at is not None


def _logged(result: FiringResult, *, level: int = logging.INFO) -> FiringResult:
    if result.told:
        log.log(level, "%s; told the editor at %s", result, result.told)
    else:
        log.log(level, "%s", result)
    return result


# the scheduler -------------------------------------------------------------------------------


@dataclass
class Runner:
    """What a firing needs in this process. Kept out of the job table: it holds the SMTP password and signer key."""

    root: Path
    engine: sa.Engine
    open_transport: Callable[[], Transport]  # opened per firing, inside that firing's event loop
    signer: Signer
    newsletter: Newsletter
    send_options: Mapping[str, Any] = field(default_factory=dict)  # send_issue's options, dkim, bounce_address
    stopping: threading.Event = field(default_factory=threading.Event)  # set: a send in progress stops cleanly
    results: list[FiringResult] = field(default_factory=list)
    _done: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def fire(self, at: dt.datetime, *, date: dt.date | None = None) -> FiringResult:
        async def work(transport: Transport) -> FiringResult:
            stop = asyncio.Event()
            watcher = asyncio.create_task(self._watch(stop))
            try:
                return await fire(self.root, self.engine, transport, signer=self.signer, at=at, date=date, stop=stop,
                                  send_options=self.send_options, known=self.newsletter)
            finally:
                watcher.cancel()

        return self._run(at, work)

    async def _watch(self, stop: asyncio.Event) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(0.2)
        stop.set()

    def missed(self, at: dt.datetime, late: dt.timedelta) -> FiringResult:
        return self._run(at, lambda transport: missed(
            self.root, self.engine, transport, at=at, late=late, known=self.newsletter))

    def _run(self, at: dt.datetime, work: Callable[[Transport], Awaitable[FiringResult]]) -> FiringResult:
        async def go() -> FiringResult:
            async with self.open_transport() as transport:
                return await work(transport)

        try:
            result = asyncio.run(go())
        except Exception as exc:  # a bug or a dead database must still reach the log and, if it can, the editor
            log.exception("the firing at %s failed", at.isoformat())
            result = FiringResult(at, issue_date(at, self.newsletter.schedule.zone), Outcome.FAILED, repr(exc))
            try:
                result = asyncio.run(self._tell_failure(result))
            except Exception:
                log.exception("could not email the editor either")
        with self._done:
            self.results.append(result)
            self._done.notify_all()
        return result

    async def _tell_failure(self, result: FiringResult) -> FiringResult:
        async with self.open_transport() as transport:
            told = await tell_editor(self.newsletter, transport, subject=f"Not sent: the scheduled send of {result.date} failed",
                                     text=f"The scheduled send at {result.at.isoformat()} failed: {result.detail}\nSee the scheduler's log.")
        return FiringResult(result.at, result.date, result.outcome, result.detail, told=told)

    def wait_for(self, count: int, *, timeout: float) -> list[FiringResult]:
        """Block until `count` firings have finished (or `timeout` seconds pass); the results so far."""
        with self._done:
            self._done.wait_for(lambda: len(self.results) >= count, timeout=timeout)
            return list(self.results)


def weekly_issue_job() -> None:
    """The job's reference in the job table; FiringExecutor runs the process's Runner in its place."""
    raise RuntimeError("the weekly issue job runs only through newsletter.schedule.FiringExecutor")


class FiringExecutor(BaseExecutor):
    """Runs the weekly job on a worker thread with this process's Runner, handing it the time the firing was due.

    APScheduler 3 does not pass a job its scheduled time; the issue date comes from it, not from
    the clock, so a firing at 23:30 caught up after midnight still sends that day's issue.
    """

    def __init__(self, runner: Runner):
        super().__init__()
        self.runner = runner
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="newsletter-firing")

    def _do_submit_job(self, job, run_times: list[dt.datetime]) -> None:
        future = self._pool.submit(self._run, job, run_times)

        def done(f: concurrent.futures.Future) -> None:
            if f.exception() is not None:
                self._run_job_error(job.id, f.exception(), f.exception().__traceback__)
            else:
                self._run_job_success(job.id, f.result())

        future.add_done_callback(done)

    def _run(self, job, run_times: list[dt.datetime]) -> list[JobExecutionEvent]:
        events = []
        for at in run_times:
            late = dt.datetime.now(dt.timezone.utc) - at
            if job.misfire_grace_time is not None and late > dt.timedelta(seconds=job.misfire_grace_time):
                self.runner.missed(at, late)
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, at))
            else:
                result = self.runner.fire(at)
                events.append(JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, at, retval=result))
        return events

    def resume_unfinished(self, grace: dt.timedelta) -> None:
        """Finish sends a stopped scheduler left half done, if they started within the grace period."""
        for send in ledger.active_sends(self.runner.engine):
            if ledger.now() - send.started_at <= grace:
                log.info("resuming the unfinished send of the issue of %s", send.issue_date)
                self._pool.submit(self.runner.fire, ledger.now(), date=send.issue_date)
            else:
                log.warning("the send of the issue of %s, started %s, is unfinished: `newsletter send --date %s` finishes it",
                            send.issue_date, send.started_at.isoformat(timespec="minutes"), send.issue_date)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)


def start_scheduler(runner: Runner, *, grace: dt.timedelta = DEFAULT_GRACE) -> BackgroundScheduler:
    """A running scheduler whose job lives in the runner's database, firing on newsletter.yaml's schedule.

    A job already in the table keeps its next run time, so a firing missed while no scheduler ran
    is still due; only a changed cron or time zone reschedules it from now. A send a stopped
    scheduler left unfinished is resumed first.
    """
    schedule = runner.newsletter.schedule
    if schedule is None:
        raise ConfigError("newsletter.yaml has no schedule: add `schedule: {cron: \"0 9 * * fri\", timezone: Europe/London}`")
    store = SQLAlchemyJobStore(engine=runner.engine, tablename=JOBS_TABLE)
    _create_table(store)
    executor = FiringExecutor(runner)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": executor},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(grace.total_seconds())},
        timezone=schedule.zone,
    )
    scheduler.start(paused=True)
    try:
        _install_job(scheduler, cron_trigger(schedule), grace)
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    executor.resume_unfinished(grace)
    scheduler.resume()
    job = scheduler.get_job(JOB_ID)
    log.info("scheduler started: %s in %s, next firing %s", schedule.cron, schedule.timezone,
             job.next_run_time.isoformat() if job and job.next_run_time else "none")
    return scheduler


def _create_table(store: SQLAlchemyJobStore) -> None:
    """Create the job table now, retrying: two schedulers starting together race on CREATE TABLE in PostgreSQL."""
    for attempt in range(5):
        try:
            store.jobs_t.create(store.engine, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def _install_job(scheduler: BackgroundScheduler, trigger: CronTrigger, grace: dt.timedelta) -> None:
    grace_seconds = int(grace.total_seconds())
    job = scheduler.get_job(JOB_ID)
    if job is None:
        try:
            scheduler.add_job(weekly_issue_job, trigger, id=JOB_ID, name="weekly issue", misfire_grace_time=grace_seconds)
            return
        except ConflictingIdError:  # another scheduler added it a moment ago
            job = scheduler.get_job(JOB_ID)
    if repr(job.trigger) != repr(trigger):
        log.info("schedule changed from %s to %s: rescheduled from now", job.trigger, trigger)
        scheduler.reschedule_job(JOB_ID, trigger=trigger)
    if job.misfire_grace_time != grace_seconds:
        scheduler.modify_job(JOB_ID, misfire_grace_time=grace_seconds)


def run(runner: Runner, *, grace: dt.timedelta = DEFAULT_GRACE, stop: threading.Event | None = None) -> None:
    """Run the scheduler until `stop` is set (the CLI sets it on SIGTERM/SIGINT)."""
    stop = stop or threading.Event()
    scheduler = start_scheduler(runner, grace=grace)
    try:
        stop.wait()
    finally:
        log.info("scheduler stopping")
        runner.stopping.set()
        scheduler.shutdown(wait=True)
