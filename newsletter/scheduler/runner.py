"""The scheduler process: APScheduler keeps the weekly job in the subscribers' database and fires it here.

A firing missed while no scheduler ran is caught up on restart within a grace period, and past it
the editor is told; a send a stopped scheduler left unfinished is resumed on the next start. While
it waits, the process checks the next firing's issue ahead of it (forewarn.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
import pickle
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import obj_to_ref

from .. import ledger
from ..content import Newsletter
from ..delivery import SendConfig
from ..errors import ConfigError
from ..transports import Transport
from .firing import FiringResult, Outcome, fire, missed, tell_editor
from .forewarn import Forewarning, forewarn
from .notices import compose
from .timing import cron_trigger, issue_date

log = logging.getLogger(__name__)

JOB_ID = "weekly-issue"
JOBS_TABLE = "apscheduler_jobs"
DEFAULT_GRACE = dt.timedelta(hours=6)
DEFAULT_WARN = dt.timedelta(hours=18)  # the evening before a morning firing
FOREWARN_EVERY = dt.timedelta(minutes=10)  # how often the check before the next firing runs
MOVED_JOB_REF = "newsletter.schedule:weekly_issue_job"  # where the job pointed before the scheduler became a package


@dataclass
class Runner:
    """What a firing needs in this process. Kept out of the job table: it holds the SMTP password and signer key."""

    root: Path
    engine: sa.Engine
    open_transport: Callable[[], Transport]  # opened per firing, inside that firing's event loop
    config: SendConfig
    newsletter: Newsletter
    warn_ahead: dt.timedelta = DEFAULT_WARN  # check each firing's issue this long before it (0: never)
    stopping: threading.Event = field(default_factory=threading.Event)  # set: a send in progress stops cleanly
    results: list[FiringResult] = field(default_factory=list)
    _done: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def fire(self, at: dt.datetime, *, date: dt.date | None = None) -> FiringResult:
        async def work(transport: Transport) -> FiringResult:
            stop = asyncio.Event()
            watcher = asyncio.create_task(self._watch(stop))
            try:
                return await fire(
                    self.root,
                    self.engine,
                    transport,
                    config=self.config,
                    at=at,
                    date=date,
                    stop=stop,
                    known=self.newsletter,
                )
            finally:
                watcher.cancel()

        return self._run(at, work)

    async def _watch(self, stop: asyncio.Event) -> None:
        # `stopping` is a threading.Event, set by another thread: asyncio cannot await it, so it is polled
        while not self.stopping.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        stop.set()

    def forewarn(self, now: dt.datetime) -> Forewarning | None:
        """The check before the next firing (forewarn.py); a failure of it goes to the log."""

        async def go() -> Forewarning | None:
            async with self.open_transport() as transport:
                return await forewarn(
                    self.root, self.engine, transport, now=now, ahead=self.warn_ahead, known=self.newsletter
                )

        try:
            return asyncio.run(go())
        except Exception:
            log.exception("the check before the next firing failed")
            return None

    def missed(self, at: dt.datetime, late: dt.timedelta) -> FiringResult:
        return self._run(
            at, lambda transport: missed(self.root, self.engine, transport, at=at, late=late, known=self.newsletter)
        )

    def _run(self, at: dt.datetime, work: Callable[[Transport], Awaitable[FiringResult]]) -> FiringResult:
        async def go() -> FiringResult:
            async with self.open_transport() as transport:
                return await work(transport)

        try:
            result = asyncio.run(go())
        except Exception as exc:  # a bug or a dead database must still reach the log and, if it can, the editor
            log.exception("the firing at %s failed", at.isoformat())
            assert self.newsletter.schedule is not None, "the scheduler starts only with a schedule"
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
        notice = compose("firing_failed", at=result.at, date=result.date, detail=result.detail)
        async with self.open_transport() as transport:
            told = await tell_editor(self.newsletter, transport, notice)
        return FiringResult(result.at, result.date, result.outcome, result.detail, told=told)

    def wait_for(self, count: int, *, timeout: float) -> list[FiringResult]:
        """Block until `count` firings have finished (or `timeout` seconds pass); the results so far."""
        with self._done:
            self._done.wait_for(lambda: len(self.results) >= count, timeout=timeout)
            return list(self.results)


def weekly_issue_job() -> None:
    """The job's reference in the job table; FiringExecutor runs the process's Runner in its place."""
    raise RuntimeError("the weekly issue job runs only through newsletter.scheduler.FiringExecutor")


class FiringExecutor(BaseExecutor):
    """Runs the weekly job on a worker thread with this process's Runner, handing it the time the firing was due.

    APScheduler 3 does not pass a job its scheduled time; the issue date comes from it, not from
    the clock, so a firing at 23:30 caught up after midnight still sends that day's issue.
    """

    def __init__(self, runner: Runner):
        super().__init__()
        self.runner = runner
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="newsletter-firing")

    def _do_submit_job(self, job: Job, run_times: list[dt.datetime]) -> None:
        future = self._pool.submit(self._run, job, run_times)

        def done(f: concurrent.futures.Future[list[JobExecutionEvent]]) -> None:
            error = f.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, f.result())

        future.add_done_callback(done)

    def _run(self, job: Job, run_times: list[dt.datetime]) -> list[JobExecutionEvent]:
        events = []
        for at in run_times:
            late = dt.datetime.now(dt.UTC) - at
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
                log.warning(
                    "the send of the issue of %s, started %s, is unfinished: `newsletter send --date %s` finishes it",
                    send.issue_date,
                    send.started_at.isoformat(timespec="minutes"),
                    send.issue_date,
                )

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
        raise ConfigError(
            'newsletter.yaml has no schedule: add `schedule: {cron: "0 9 * * fri", timezone: Europe/London}`'
        )
    store = SQLAlchemyJobStore(engine=runner.engine, tablename=JOBS_TABLE)
    _create_table(store)
    _adopt_moved_job(store)
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
    log.info(
        "scheduler started: %s in %s, next firing %s",
        schedule.cron,
        schedule.timezone,
        job.next_run_time.isoformat() if job and job.next_run_time else "none",
    )
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


def _adopt_moved_job(store: SQLAlchemyJobStore) -> None:
    """Point a job stored before the move at weekly_issue_job; APScheduler would drop it, and a missed firing with it."""
    table = store.jobs_t
    with store.engine.begin() as conn:
        stored = conn.execute(sa.select(table.c.job_state).where(table.c.id == JOB_ID)).scalar_one_or_none()
        if stored is None:
            return
        state = pickle.loads(stored)
        if state.get("func") != MOVED_JOB_REF:
            return
        state["func"] = obj_to_ref(weekly_issue_job)
        new_state = pickle.dumps(state, store.pickle_protocol)
        conn.execute(table.update().where(table.c.id == JOB_ID).values(job_state=new_state))


def _install_job(scheduler: BackgroundScheduler, trigger: CronTrigger, grace: dt.timedelta) -> None:
    grace_seconds = int(grace.total_seconds())
    job = scheduler.get_job(JOB_ID)
    if job is None:
        try:
            scheduler.add_job(
                weekly_issue_job, trigger, id=JOB_ID, name="weekly issue", misfire_grace_time=grace_seconds
            )
            return
        except ConflictingIdError:  # another scheduler added it a moment ago
            job = scheduler.get_job(JOB_ID)
    if repr(job.trigger) != repr(trigger):
        log.info("schedule changed from %s to %s: rescheduled from now", job.trigger, trigger)
        scheduler.reschedule_job(JOB_ID, trigger=trigger)
    if job.misfire_grace_time != grace_seconds:
        scheduler.modify_job(JOB_ID, misfire_grace_time=grace_seconds)


def run(runner: Runner, *, grace: dt.timedelta = DEFAULT_GRACE, stop: threading.Event | None = None) -> None:
    """Run the scheduler until `stop` is set (the CLI sets it on SIGTERM/SIGINT), checking issues ahead of firings."""
    stop = stop or threading.Event()
    scheduler = start_scheduler(runner, grace=grace)
    try:
        while runner.warn_ahead and not stop.is_set():
            runner.forewarn(ledger.now())
            stop.wait(FOREWARN_EVERY.total_seconds())
        stop.wait()
    finally:
        log.info("scheduler stopping")
        runner.stopping.set()
        scheduler.shutdown(wait=True)
