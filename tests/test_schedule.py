"""The weekly schedule: firing times across clock changes, what a firing does, missed firings, two schedulers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from newsletter import ledger
from newsletter import scheduler as schedule
from newsletter.cli import main
from newsletter.content import Schedule
from newsletter.delivery import SendConfig
from newsletter.folder import load_newsletter
from newsletter.importer import import_csv
from newsletter.scheduler import Outcome
from newsletter.store import open_store
from newsletter.tokens import Signer
from newsletter.transports import OutboxTransport, SMTPTransport

LONDON = ZoneInfo("Europe/London")
SIGNER = Signer("test secret key")
EDITOR = "programme.office@improvement.example.org"  # examples/newsletter.yaml's reply_to


# helpers -------------------------------------------------------------------------------------


def set_schedule(root: Path, cron: str, timezone: str = "Europe/London") -> None:
    path = root / "newsletter.yaml"
    data = yaml.safe_load(path.read_text())
    data["schedule"] = {"cron": cron, "timezone": timezone}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def write_issue(root: Path, date: dt.date, **changes) -> Path:
    """A valid issue file for `date` (its number unique to the date), with `changes` applied."""
    data = {
        "number": date.toordinal() - 738000,
        "date": date.isoformat(),
        "items": [{"programme": f"The update of {date}", "update": "Something happened this week."}],
        **changes,
    }
    data.setdefault("subject", f"What happened in the week to {date}")  # last, so the lines above keep their numbers
    path = root / "content" / "issues" / f"{date}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def subscribe(engine: sa.Engine, root: Path) -> None:
    newsletter, _ = load_newsletter(root)
    report = import_csv(engine, root / "subscribers" / "network-members.csv", known_networks=newsletter.network_ids)
    assert report.written


def recipients(engine: sa.Engine, date: dt.date) -> set[str]:
    send = ledger.get_send(engine, date)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(ledger.deliveries_table.c.email).where(ledger.deliveries_table.c.send_id == send.id)
        )
        return {r.email for r in rows}


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def to_subscribers(smtp_server) -> list[str]:
    return [r for m in smtp_server.messages for r in m.rcpt_tos if r != EDITOR]


def notices(smtp_server) -> list[email.message.EmailMessage]:
    return [parsed(m.data) for m in smtp_server.messages if m.rcpt_tos == [EDITOR]]


@pytest.fixture
def news(example_dir: Path, engine) -> Path:
    subscribe(engine, example_dir)
    return example_dir


def fire(root, engine, smtp_server, at: dt.datetime) -> schedule.FiringResult:
    async def go():
        async with SMTPTransport(smtp_server.url) as transport:
            return await schedule.fire(root, engine, transport, config=SendConfig(SIGNER), at=at)

    return asyncio.run(go())


# when it fires -------------------------------------------------------------------------------


def iso(times: list[dt.datetime]) -> list[str]:
    return [t.isoformat() for t in times]


def test_next_firings_are_local_times_with_their_offset():
    friday = Schedule(cron="0 9 * * fri", timezone="Europe/London")
    after = dt.datetime(2026, 11, 25, 12, 0, tzinfo=LONDON)
    assert iso(schedule.next_firings(friday, after=after, count=3)) == [
        "2026-11-27T09:00:00+00:00",
        "2026-12-04T09:00:00+00:00",
        "2026-12-11T09:00:00+00:00",
    ]
    # strictly after: a firing at `after` itself is not "next"
    at_nine = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON)
    assert iso(schedule.next_firings(friday, after=at_nine, count=1)) == ["2026-12-04T09:00:00+00:00"]
    # another zone's `after` is the same instant
    assert schedule.next_firings(
        friday, after=after.astimezone(ZoneInfo("Asia/Tokyo")), count=3
    ) == schedule.next_firings(friday, after=after, count=3)
    with pytest.raises(ValueError, match="must carry a time zone"):
        schedule.next_firings(friday, after=dt.datetime(2026, 11, 25), count=1)  # noqa: DTZ001 -- naive, on purpose


def test_friday_nine_stays_nine_across_both_clock_changes():
    friday = Schedule(cron="0 9 * * fri", timezone="Europe/London")
    spring = schedule.next_firings(friday, after=dt.datetime(2027, 3, 20, tzinfo=LONDON), count=2)
    autumn = schedule.next_firings(friday, after=dt.datetime(2027, 10, 23, tzinfo=LONDON), count=2)
    assert iso(spring) == ["2027-03-26T09:00:00+00:00", "2027-04-02T09:00:00+01:00"]
    assert iso(autumn) == ["2027-10-29T09:00:00+01:00", "2027-11-05T09:00:00+00:00"]
    # one week apart on the wall clock is 167 and 169 hours apart
    assert spring[1].timestamp() - spring[0].timestamp() == 167 * 3600
    assert autumn[1].timestamp() - autumn[0].timestamp() == 169 * 3600


def test_a_time_inside_the_changed_hour_fires_once_each_week():
    """01:30 does not exist on 28 March 2027 and happens twice on 31 October 2027 in London."""
    sunday = Schedule(cron="30 1 * * sun", timezone="Europe/London")
    spring = schedule.next_firings(sunday, after=dt.datetime(2027, 3, 20, tzinfo=LONDON), count=3)
    autumn = schedule.next_firings(sunday, after=dt.datetime(2027, 10, 23, tzinfo=LONDON), count=3)
    assert iso(spring) == ["2027-03-21T01:30:00+00:00", "2027-03-28T02:30:00+01:00", "2027-04-04T01:30:00+01:00"]
    assert iso(autumn) == ["2027-10-24T01:30:00+01:00", "2027-10-31T01:30:00+01:00", "2027-11-07T01:30:00+00:00"]


def test_the_issue_date_is_the_day_in_the_schedules_zone():
    # 00:30 on a summer Friday in London is 23:30 on Thursday in UTC
    at = dt.datetime(2027, 4, 1, 23, 30, tzinfo=dt.UTC)
    assert schedule.issue_date(at, LONDON) == dt.date(2027, 4, 2)
    assert schedule.issue_date(at, ZoneInfo("America/New_York")) == dt.date(2027, 4, 1)


# what a firing does ------------------------------------------------------------------------------


def test_firing_with_a_valid_issue_delivers_it_once(news, engine, smtp_server):
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON)
    result = fire(news, engine, smtp_server, at)
    assert result.outcome == Outcome.SENT, result
    assert result.date == dt.date(2026, 11, 27)
    assert result.summary.finished
    expected = recipients(engine, result.date)
    assert expected and sorted(to_subscribers(smtp_server)) == sorted(expected)
    subjects = {parsed(m.data)["Subject"] for m in smtp_server.messages}
    assert subjects == {"Update No 119: exploitation study, Family Support Act duties, SEND inspections"}
    assert notices(smtp_server) == []

    # The same firing again (a second scheduler, a restart): the ledger has it, nothing more is sent.
    again = fire(news, engine, smtp_server, at)
    assert again.outcome == Outcome.ALREADY_SENT
    assert len(smtp_server.messages) == len(expected)


def test_each_send_a_firing_starts_over_smtp_without_dkim_warns_once(news, engine, smtp_server, tmp_path, caplog):
    friday = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON)
    write_issue(news, dt.date(2026, 12, 4))
    caplog.set_level("WARNING", logger="newsletter.scheduler")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "without DKIM" in r.getMessage()]

    assert fire(news, engine, smtp_server, friday).outcome == Outcome.SENT
    assert warnings() == [f"issue 2026-11-27: {schedule.firing.UNSIGNED_WARNING}"]
    assert fire(news, engine, smtp_server, friday).outcome == Outcome.ALREADY_SENT  # no send started: no warning
    assert fire(news, engine, smtp_server, friday + dt.timedelta(days=7)).outcome == Outcome.SENT
    assert len(warnings()) == 2 and "issue 2026-12-04" in warnings()[1]

    async def to_the_outbox() -> schedule.FiringResult:
        async with OutboxTransport(tmp_path / "outbox") as transport:
            at = friday + dt.timedelta(days=14)
            write_issue(news, at.date())
            return await schedule.fire(news, engine, transport, config=SendConfig(SIGNER), at=at)

    assert asyncio.run(to_the_outbox()).outcome == Outcome.SENT
    assert len(warnings()) == 2  # the outbox is not mail sent: nothing to sign


def test_firing_without_an_issue_tells_the_editor_and_sends_nothing(news, engine, smtp_server):
    result = fire(news, engine, smtp_server, dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON))
    assert result.outcome == Outcome.NO_ISSUE
    assert result.told == EDITOR
    assert to_subscribers(smtp_server) == []
    assert ledger.get_send(engine, dt.date(2026, 12, 4)) is None
    [notice] = notices(smtp_server)
    assert notice["Subject"] == "Not sent: no issue for Friday 4 December 2026"
    assert notice["From"].addresses[0].addr_spec == "updates@improvement.example.org"
    body = notice.get_content()
    assert "2026-12-04.yaml" in body and "newsletter send --date 2026-12-04" in body


def test_firing_with_an_invalid_issue_names_the_error(news, engine, smtp_server):
    date = dt.date(2026, 12, 4)
    write_issue(news, date, networks=["qa-leads", "fostring"])
    result = fire(news, engine, smtp_server, dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON))
    assert result.outcome == Outcome.INVALID
    assert to_subscribers(smtp_server) == []
    assert ledger.get_send(engine, date) is None
    [notice] = notices(smtp_server)
    assert notice["Subject"] == "Not sent: errors in the issue of Friday 4 December 2026"
    body = notice.get_content()
    assert "2026-12-04.yaml:8: networks[2]: unknown network 'fostring' (did you mean 'fostering'?)" in body


def test_the_same_firing_twice_tells_the_editor_once(news, engine, smtp_server):
    """A second scheduler (or a retry) reaching the same firing finds the notice in the ledger."""
    at = dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON)
    first, second = fire(news, engine, smtp_server, at), fire(news, engine, smtp_server, at)
    assert first.outcome == second.outcome == Outcome.NO_ISSUE
    assert (first.told, second.told) == (EDITOR, None)
    assert len(notices(smtp_server)) == 1
    # the next week's firing is another notice
    fire(news, engine, smtp_server, at + dt.timedelta(days=7))
    assert len(notices(smtp_server)) == 2


def test_with_the_outbox_default_the_notice_lands_in_the_outbox(news, engine, tmp_path):
    """No SMTP relay configured: the editor's notice is an .eml in the outbox, where `newsletter send` writes too."""
    data = yaml.safe_load((news / "newsletter.yaml").read_text())
    del data["reply_to"]  # then the sender's own address is told
    (news / "newsletter.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    outbox = tmp_path / "outbox"
    result = asyncio.run(
        schedule.fire(
            news,
            engine,
            OutboxTransport(outbox),
            config=SendConfig(SIGNER),
            at=dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON),
        )
    )
    assert result.outcome == Outcome.NO_ISSUE
    [eml] = outbox.glob("*.eml")
    notice = parsed(eml.read_bytes())
    assert notice["To"].addresses[0].addr_spec == "updates@improvement.example.org"
    assert notice["Auto-Submitted"] == "auto-generated"


def test_errors_in_another_file_block_the_send_as_newsletter_send_would(news, engine, smtp_server):
    (news / "content" / "issues" / "2026-11-20.yaml").write_text("number: [\n")
    result = fire(news, engine, smtp_server, dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON))
    assert result.outcome == Outcome.INVALID
    assert to_subscribers(smtp_server) == []
    assert "2026-11-20.yaml" in notices(smtp_server)[0].get_content()


def test_the_editor_is_told_when_newsletter_yaml_breaks_after_start(news, engine, smtp_server):
    known, _ = load_newsletter(news)
    (news / "newsletter.yaml").write_text(
        (news / "newsletter.yaml").read_text().replace("name: Regional", "nme: Regional", 1)
    )

    async def go():
        async with SMTPTransport(smtp_server.url) as transport:
            return await schedule.fire(
                news,
                engine,
                transport,
                config=SendConfig(SIGNER),
                known=known,
                at=dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON),
            )

    result = asyncio.run(go())
    assert result.outcome == Outcome.INVALID and result.told == EDITOR
    assert "newsletter.yaml" in notices(smtp_server)[0].get_content()
    assert to_subscribers(smtp_server) == []


def test_a_stopped_send_tells_the_editor(news, engine, smtp_server):
    """The relay refusing everything pauses the send; the editor hears of it (through the same relay here: it takes notices)."""
    smtp_server.handler.reply = lambda envelope: None if envelope.rcpt_tos == [EDITOR] else "451 4.3.0 try later"
    from newsletter.delivery import DeliveryOptions

    async def go():
        async with SMTPTransport(smtp_server.url) as transport:
            return await schedule.fire(
                news,
                engine,
                transport,
                config=SendConfig(SIGNER, options=DeliveryOptions(pause_after_errors=3, retry_base=0.01)),
                at=dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON),
            )

    result = asyncio.run(go())
    assert result.outcome == Outcome.FAILED
    assert "paused" in result.detail
    [notice] = notices(smtp_server)
    assert notice["Subject"] == "Send stopped: issue of 2026-11-27"


# across the clock changes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected_date"),
    [
        (dt.datetime(2027, 3, 27, tzinfo=LONDON), dt.date(2027, 3, 28)),
        (dt.datetime(2027, 10, 30, tzinfo=LONDON), dt.date(2027, 10, 31)),
    ],
)
def test_the_weeks_of_the_clock_changes_send_once(example_dir, engine, smtp_server, after, expected_date):
    """A Sunday 01:30 schedule, driven by APScheduler's own trigger: the gap fires once, the repeated hour once."""
    set_schedule(example_dir, "30 1 * * sun")
    write_issue(example_dir, expected_date)
    subscribe(engine, example_dir)
    trigger = schedule.cron_trigger(load_newsletter(example_dir)[0].schedule)
    firings, previous, now = [], None, after
    while (at := trigger.get_next_fire_time(previous, now)).date() == expected_date:
        firings.append(at)
        previous = now = at
    results = [fire(example_dir, engine, smtp_server, at) for at in firings]
    outcomes = [r.outcome for r in results]
    if expected_date.month == 3:
        assert outcomes == [Outcome.SENT]
        assert schedule.local(firings[0], LONDON).isoformat() == "2027-03-28T02:30:00+01:00"
    else:
        assert [schedule.local(at, LONDON).isoformat() for at in firings] == [
            "2027-10-31T01:30:00+01:00",
            "2027-10-31T01:30:00+00:00",
        ]
        assert outcomes == [Outcome.SENT, Outcome.REPEAT]
    assert {r.date for r in results} == {expected_date}
    sent = to_subscribers(smtp_server)
    assert sent and len(sent) == len(set(sent)) == len(recipients(engine, expected_date))
    assert notices(smtp_server) == []


# the scheduler: restarts, grace, two at once ----------------------------------------------------------------


def runner_for(root: Path, engine: sa.Engine, smtp_server) -> schedule.Runner:
    newsletter, _ = load_newsletter(root)
    return schedule.Runner(
        root=root,
        engine=engine,
        open_transport=lambda: SMTPTransport(smtp_server.url),
        config=SendConfig(SIGNER),
        newsletter=newsletter,
    )


def daily_at(root: Path, moment: dt.datetime) -> None:
    """Schedule a daily firing at `moment`'s wall-clock minute in London."""
    local = moment.astimezone(LONDON)
    set_schedule(root, f"{local.minute} {local.hour} * * *")


def stored_next_run(engine: sa.Engine) -> dt.datetime | None:
    store = SQLAlchemyJobStore(engine=engine, tablename=schedule.JOBS_TABLE)
    job = store.lookup_job(schedule.JOB_ID)
    return job.next_run_time if job else None


def pretend_down_since(engine: sa.Engine, missed: dt.datetime) -> None:
    """Leave the job table as a scheduler that stopped before `missed` would: that firing still to run."""
    store = SQLAlchemyJobStore(engine=engine, tablename=schedule.JOBS_TABLE)
    job = store.lookup_job(schedule.JOB_ID)
    job.next_run_time = missed
    store.update_job(job)


def missed_firing(root: Path, engine: sa.Engine, smtp_server, *, ago: dt.timedelta) -> tuple[dt.datetime, dt.date]:
    """A daily schedule whose firing `ago` was missed while no scheduler ran; that day's issue written."""
    missed = (dt.datetime.now(LONDON) - ago).replace(second=0, microsecond=0)
    missed = schedule.local(missed, LONDON)
    daily_at(root, missed)
    date = schedule.issue_date(missed, LONDON)
    write_issue(root, date)
    first = schedule.start_scheduler(runner_for(root, engine, smtp_server))  # first start: records the job
    first.shutdown()
    assert stored_next_run(engine) > missed  # tomorrow's
    pretend_down_since(engine, missed)
    assert stored_next_run(engine) == missed
    return missed, date


def first_firing(runner: schedule.Runner, *, grace: dt.timedelta) -> schedule.FiringResult:
    """Start a scheduler, wait for what it does first, stop it."""
    scheduler = schedule.start_scheduler(runner, grace=grace)
    try:
        [result] = runner.wait_for(1, timeout=30)
    finally:
        scheduler.shutdown()
    return result


def test_a_missed_firing_within_the_grace_period_runs_on_restart(news, engine, smtp_server):
    missed, date = missed_firing(news, engine, smtp_server, ago=dt.timedelta(hours=1))
    result = first_firing(runner_for(news, engine, smtp_server), grace=dt.timedelta(hours=6))
    assert result.outcome == Outcome.SENT, result
    assert result.at == missed and result.date == date
    assert sorted(to_subscribers(smtp_server)) == sorted(recipients(engine, date))
    assert stored_next_run(engine) > dt.datetime.now(LONDON)  # and it will not run again


def test_a_missed_firing_past_the_grace_period_is_not_sent_and_the_editor_is_told(news, engine, smtp_server):
    missed, date = missed_firing(news, engine, smtp_server, ago=dt.timedelta(hours=3))
    result = first_firing(runner_for(news, engine, smtp_server), grace=dt.timedelta(hours=2))
    assert result.outcome == Outcome.MISSED and result.at == missed
    assert to_subscribers(smtp_server) == []
    assert ledger.get_send(engine, date) is None
    [notice] = notices(smtp_server)
    assert "was missed" in notice["Subject"]
    assert f"newsletter send --date {date}" in notice.get_content()
    assert stored_next_run(engine) > dt.datetime.now(LONDON)


def test_a_send_stopped_with_the_scheduler_is_resumed_when_it_starts_again(news, engine, smtp_server, caplog):
    runner = runner_for(news, engine, smtp_server)
    runner.stopping.set()  # as on SIGTERM while the firing runs: the send stops at once, cleanly
    stopped = runner.fire(dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON))
    assert stopped.outcome == Outcome.STOPPED
    assert to_subscribers(smtp_server) == [] and not schedule.already_sent(engine, dt.date(2026, 11, 27))
    # An older unfinished send (started past the grace period) is left to the editor, with a log line.
    ledger.create_send(engine, dt.date(2026, 11, 20), ["qa-leads"])
    with engine.begin() as conn:
        conn.execute(
            ledger.sends_table.update()
            .where(ledger.sends_table.c.issue_date == dt.date(2026, 11, 20))
            .values(started_at=ledger.now() - dt.timedelta(hours=7))
        )

    result = first_firing(runner_for(news, engine, smtp_server), grace=dt.timedelta(hours=6))
    assert result.outcome == Outcome.SENT and result.date == dt.date(2026, 11, 27)
    assert schedule.already_sent(engine, dt.date(2026, 11, 27))
    assert sorted(to_subscribers(smtp_server)) == sorted(recipients(engine, dt.date(2026, 11, 27)))
    assert not schedule.already_sent(engine, dt.date(2026, 11, 20))
    assert "newsletter send --date 2026-11-20" in caplog.text


def test_a_restart_keeps_the_next_firing_and_a_new_cron_reschedules(example_dir, engine, smtp_server):
    set_schedule(example_dir, "0 9 * * fri")
    scheduler = schedule.start_scheduler(runner_for(example_dir, engine, smtp_server))
    scheduler.shutdown()
    friday = stored_next_run(engine)
    assert friday.astimezone(LONDON).strftime("%a %H:%M") == "Fri 09:00"
    scheduler = schedule.start_scheduler(runner_for(example_dir, engine, smtp_server), grace=dt.timedelta(hours=1))
    scheduler.shutdown()
    assert stored_next_run(engine) == friday
    set_schedule(example_dir, "0 8 * * tue")
    scheduler = schedule.start_scheduler(runner_for(example_dir, engine, smtp_server))
    scheduler.shutdown()
    assert stored_next_run(engine).astimezone(LONDON).strftime("%a %H:%M") == "Tue 08:00"


def test_a_job_stored_before_the_scheduler_became_a_package_keeps_its_next_firing(example_dir, engine, smtp_server):
    """The job table names weekly_issue_job's module: one stored as newsletter.schedule's is adopted, not dropped."""
    scheduler = schedule.start_scheduler(runner_for(example_dir, engine, smtp_server))
    scheduler.shutdown()
    due = stored_next_run(engine)
    table = SQLAlchemyJobStore(engine=engine, tablename=schedule.JOBS_TABLE).jobs_t
    with engine.begin() as conn:
        state = pickle.loads(conn.execute(sa.select(table.c.job_state)).scalar_one())
        state["func"] = "newsletter.schedule:weekly_issue_job"
        conn.execute(table.update().values(job_state=pickle.dumps(state)))
    scheduler = schedule.start_scheduler(runner_for(example_dir, engine, smtp_server))
    scheduler.shutdown()
    assert stored_next_run(engine) == due
    with engine.connect() as conn:
        assert (
            pickle.loads(conn.execute(sa.select(table.c.job_state)).scalar_one())["func"]
            == "newsletter.scheduler.runner:weekly_issue_job"
        )


def test_no_schedule_in_newsletter_yaml_is_a_clear_error(example_dir, engine, smtp_server):
    data = yaml.safe_load((example_dir / "newsletter.yaml").read_text())
    del data["schedule"]
    (example_dir / "newsletter.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(schedule.ConfigError, match="no schedule"):
        schedule.start_scheduler(runner_for(example_dir, engine, smtp_server))


def done_with(scheduler: BackgroundScheduler, moment: dt.datetime) -> bool:
    """Whether `scheduler` will never fire `moment` again: the job, as it reads it, is due after `moment`.

    get_job takes the job-store lock the scheduler holds while it finds due jobs and hands them to its
    executor, so a firing of `moment` it found is with the executor by then, and a later look finds none.
    """
    job = scheduler.get_job(schedule.JOB_ID)
    return job is not None and job.next_run_time is not None and job.next_run_time > moment


def wait_until(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not true within {timeout} s"
        time.sleep(0.05)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_schedulers_on_one_postgresql_database_send_once(example_dir, database_url, smtp_server, request):
    """Two schedulers started by mistake, each with its own connections, catch up the same missed firing."""
    engines = [open_store(database_url), open_store(database_url)]
    request.addfinalizer(lambda: [e.dispose() for e in engines])
    subscribe(engines[0], example_dir)
    missed, date = missed_firing(example_dir, engines[0], smtp_server, ago=dt.timedelta(minutes=5))

    runners = [runner_for(example_dir, e, smtp_server) for e in engines]
    schedulers = []
    starters = [threading.Thread(target=lambda r=r: schedulers.append(schedule.start_scheduler(r))) for r in runners]
    for t in starters:
        t.start()
    for t in starters:
        t.join()
    try:
        for s in schedulers:
            wait_until(lambda s=s: done_with(s, missed), timeout=30)
    finally:
        for s in schedulers:
            s.shutdown()  # waits for a firing in progress: every firing either one submitted is in its runner's results
    outcomes = [r.outcome for runner in runners for r in runner.results]
    assert Outcome.SENT in outcomes and set(outcomes) <= {Outcome.SENT, Outcome.ALREADY_SENT}
    sent = to_subscribers(smtp_server)
    assert sent and sorted(sent) == sorted(set(sent)) == sorted(recipients(engines[0], date))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_schedulers_starting_together_on_a_fresh_database_agree_on_one_job(
    example_dir, database_url, smtp_server, request
):
    engines = [open_store(database_url), open_store(database_url)]
    request.addfinalizer(lambda: [e.dispose() for e in engines])
    barrier = threading.Barrier(2)
    schedulers, errors = [], []

    def start(engine):
        barrier.wait()
        try:
            schedulers.append(schedule.start_scheduler(runner_for(example_dir, engine, smtp_server)))
        except Exception as exc:  # reported below, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in schedulers:
        s.shutdown()
    assert errors == [] and len(schedulers) == 2
    with engines[0].connect() as conn:
        assert conn.execute(sa.text(f"SELECT id FROM {schedule.JOBS_TABLE}")).scalars().all() == [schedule.JOB_ID]


def fire_together(root, engines, smtp_server, at: dt.datetime) -> list[schedule.FiringResult]:
    """The same firing in one thread per engine, released at the same moment."""
    barrier = threading.Barrier(len(engines))
    results = []

    def one(engine):
        barrier.wait()
        results.append(fire(root, engine, smtp_server, at))

    threads = [threading.Thread(target=one, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_firings_at_once_on_postgresql_send_once(example_dir, database_url, smtp_server, request):
    """The ledger guard itself, with both firings certainly running together (each with its own engine)."""
    engines = [open_store(database_url), open_store(database_url)]
    request.addfinalizer(lambda: [e.dispose() for e in engines])
    subscribe(engines[0], example_dir)
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON)
    results = fire_together(example_dir, engines, smtp_server, at)
    assert {r.outcome for r in results} <= {Outcome.SENT, Outcome.ALREADY_SENT}
    sent = to_subscribers(smtp_server)
    assert sent and sorted(sent) == sorted(set(sent)) == sorted(recipients(engines[0], at.date()))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_firings_at_once_without_an_issue_tell_the_editor_once(example_dir, database_url, smtp_server, request):
    engines = [open_store(database_url), open_store(database_url)]
    request.addfinalizer(lambda: [e.dispose() for e in engines])
    results = fire_together(example_dir, engines, smtp_server, dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON))
    assert [r.outcome for r in results] == [Outcome.NO_ISSUE, Outcome.NO_ISSUE]
    assert sorted(r.told or "" for r in results) == ["", EDITOR]
    assert len(notices(smtp_server)) == 1


# the commands --------------------------------------------------------------------------------


def test_schedule_next_prints_firings_and_whether_each_issue_passes_check(example_dir, capsys):
    argv = ["schedule", "next", "--dir", str(example_dir), "--count", "4", "--after", "2026-11-19T12:00"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "2026-11-20T09:00:00+00:00  Fri  2026-11-20.yaml  ok",
        "2026-11-27T09:00:00+00:00  Fri  2026-11-27.yaml  ok",
        "2026-12-04T09:00:00+00:00  Fri  2026-12-04.yaml  no issue file (2026-12-04.yaml missing)",
        "2026-12-11T09:00:00+00:00  Fri  2026-12-11.yaml  no issue file (2026-12-11.yaml missing)",
    ]
    # A draft with an error fails check, and is only a warning for the earlier issues, which do not draw on it.
    write_issue(example_dir, dt.date(2026, 12, 11), networks=["nope"])
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith("2026-12-11T09:00:00+00:00  Fri  2026-12-11.yaml  1 error: ")
    assert "2026-12-11.yaml:7: networks[1]: unknown network 'nope'" in lines[3]
    assert (
        lines[0]
        == "2026-11-20T09:00:00+00:00  Fri  2026-11-20.yaml  ok, 1 warning (newsletter check --date 2026-11-20)"
    )
    assert "no issue file" in lines[2]


def test_schedule_next_across_the_spring_change(example_dir, capsys):
    assert (
        main(["schedule", "next", "--dir", str(example_dir), "--count", "2", "--after", "2027-03-20T00:00:00+00:00"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["2027-03-26T09:00:00+00:00", "2027-04-02T09:00:00+01:00"]


def test_schedule_next_bad_input_is_one_line(example_dir, capsys):
    with pytest.raises(SystemExit):
        main(["schedule", "next", "--dir", str(example_dir), "--after", "next friday"])
    assert "is not an ISO date-time" in capsys.readouterr().err
    data = yaml.safe_load((example_dir / "newsletter.yaml").read_text())
    del data["schedule"]
    (example_dir / "newsletter.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    assert main(["schedule", "next", "--dir", str(example_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no schedule" in err


def test_schedule_run_refuses_smtp_without_a_secret_key(example_dir, monkeypatch, capsys):
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", "smtp://127.0.0.1:2525")
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY", raising=False)
    assert main(["schedule", "run", "--dir", str(example_dir)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NEWSLETTER_SECRET_KEY is not set" in err
    assert not (example_dir / "newsletter.db").exists()  # refused before anything was opened


def test_schedule_next_counts_checks_warnings_which_do_not_stop_a_send(example_dir, capsys):
    write_issue(example_dir, dt.date(2026, 12, 4))  # no action, no links: valid, with a warning
    assert main(["schedule", "next", "--dir", str(example_dir), "--count", "1", "--after", "2026-12-01T00:00"]) == 0
    out = capsys.readouterr().out
    assert (
        out == "2026-12-04T09:00:00+00:00  Fri  2026-12-04.yaml  ok, 1 warning (newsletter check --date 2026-12-04)\n"
    )
    [ready] = schedule.check_issues(example_dir, [dt.date(2026, 12, 4)])
    assert ready.ok and "no action" in str(ready.warnings[0])


# nobody to send to, and the check the evening before --------------------------------------------------------


def notices_recorded(engine: sa.Engine) -> list[tuple[str, dt.date]]:
    with engine.connect() as conn:
        table = schedule.notices_table
        return [(r.kind, r.issue_date) for r in conn.execute(sa.select(table.c.kind, table.c.issue_date))]


def test_the_schedulers_notices_table_matches_its_migration(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from newsletter.store import metadata

    assert schedule.notices_table.metadata is metadata  # one MetaData for every table, migrated with the rest
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert [d for d in diff if "notices" in repr(d)] == []
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON)
    assert schedule.first_notice(engine, firing_at=at, kind="missed", issue_date=at.date())
    assert not schedule.first_notice(engine, firing_at=at, kind="missed", issue_date=at.date())
    assert notices_recorded(engine) == [("missed", dt.date(2026, 11, 27))]


def test_firing_with_no_subscribers_tells_the_editor_and_records_no_send(example_dir, engine, tmp_path):
    outbox = tmp_path / "outbox"
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=LONDON)

    def fire_to_outbox() -> schedule.FiringResult:
        return asyncio.run(
            schedule.fire(example_dir, engine, OutboxTransport(outbox), config=SendConfig(SIGNER), at=at)
        )

    result = fire_to_outbox()
    assert result.outcome == Outcome.NO_RECIPIENTS and result.told == EDITOR
    assert "would reach nobody" in result.detail
    assert ledger.get_send(engine, dt.date(2026, 11, 27)) is None and ledger.sent_issues(engine) == {}
    assert notices_recorded(engine) == [("no recipients", dt.date(2026, 11, 27))]
    [eml] = outbox.glob("*.eml")
    notice = parsed(eml.read_bytes())
    assert notice["To"].addresses[0].addr_spec == EDITOR
    assert notice["Subject"] == "Not sent: the issue of Friday 27 November 2026 would reach nobody"
    assert "newsletter subscribers import FILE" in notice.get_content() and "qa-leads" in notice.get_content()

    subscribe(engine, example_dir)  # the editor imports, and the firing caught up (or `send`) reaches everyone
    again = fire_to_outbox()
    assert again.outcome == Outcome.SENT and again.summary.tally["sent"] == len(recipients(engine, again.date)) > 0


THURSDAY_AFTERNOON = dt.datetime(2026, 12, 3, 16, 0, tzinfo=LONDON)  # 17 hours before Friday 09:00's firing
FRIDAY = dt.date(2026, 12, 4)


def forewarn(root: Path, engine: sa.Engine, smtp_server, now: dt.datetime = THURSDAY_AFTERNOON, hours: int = 18):
    known, _ = load_newsletter(root)

    async def go():
        async with SMTPTransport(smtp_server.url) as transport:
            return await schedule.forewarn(
                root, engine, transport, now=now, ahead=dt.timedelta(hours=hours), known=known
            )

    return asyncio.run(go())


def test_the_evening_before_a_missing_issue_is_told_once(news, engine, smtp_server):
    first = forewarn(news, engine, smtp_server)
    assert first.date == FRIDAY and first.firing_at == dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON)
    assert first.problem == "no issue file (2026-12-04.yaml missing)" and first.told == EDITOR
    again = forewarn(news, engine, smtp_server, now=THURSDAY_AFTERNOON + dt.timedelta(hours=2))
    assert again.problem and again.told is None  # once per firing, however often the check runs
    [notice] = notices(smtp_server)
    assert notice["Subject"] == "Not ready: no issue for Friday 4 December 2026"
    assert "09:00 GMT on Friday 4 December 2026" in notice.get_content() and "2026-12-04.yaml" in notice.get_content()
    assert notices_recorded(engine) == [("forewarning", FRIDAY)]
    assert ledger.get_send(engine, FRIDAY) is None and to_subscribers(smtp_server) == []


@pytest.mark.parametrize(
    ("subscribed", "changes", "problem", "subject", "says"),
    [
        (
            True,
            {"networks": ["qa-leads", "fostring"]},
            "1 error:",
            "Not ready: errors in the issue of Friday 4 December 2026",
            "unknown network 'fostring' (did you mean 'fostering'?)",
        ),
        (  # valid, but nobody has been imported
            False,
            {},
            "nobody active is in its networks (",
            "Not ready: the issue of Friday 4 December 2026 would reach nobody",
            "newsletter subscribers import FILE",
        ),
    ],
    ids=["errors", "nobody"],
)
def test_the_evening_before_errors_or_nobody_to_send_to_are_told(
    example_dir, engine, smtp_server, subscribed, changes, problem, subject, says
):
    if subscribed:
        subscribe(engine, example_dir)
    write_issue(example_dir, FRIDAY, **changes)
    warned = forewarn(example_dir, engine, smtp_server)
    assert warned.problem.startswith(problem) and warned.told == EDITOR
    [notice] = notices(smtp_server)
    assert notice["Subject"] == subject and says in notice.get_content()


def test_the_evening_before_a_ready_issue_tells_nobody_and_too_early_nothing_is_checked(news, engine, smtp_server):
    assert forewarn(news, engine, smtp_server, now=THURSDAY_AFTERNOON - dt.timedelta(hours=2)) is None  # 19 h ahead
    write_issue(news, FRIDAY)
    ready = forewarn(news, engine, smtp_server)
    assert ready.date == FRIDAY and ready.problem is None and ready.told is None
    assert forewarn(news, engine, smtp_server, hours=0) is None  # 0: off
    assert smtp_server.messages == [] and notices_recorded(engine) == []


def test_the_running_scheduler_checks_the_next_firing_ahead_of_it(example_dir, engine, smtp_server):
    set_schedule(example_dir, "0 9 * * *")  # daily: the next firing is always within a day, and its file missing
    runner = dataclasses.replace(runner_for(example_dir, engine, smtp_server), warn_ahead=dt.timedelta(hours=25))
    stop = threading.Event()
    thread = threading.Thread(target=schedule.run, args=(runner,), kwargs={"stop": stop})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not notices(smtp_server) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    [notice] = notices(smtp_server)
    assert notice["Subject"].startswith("Not ready: no issue for ")
    assert [kind for kind, _ in notices_recorded(engine)] == ["forewarning"]


def test_schedule_run_reads_the_inbound_mailbox_in_the_background_until_stopped(example_dir, tmp_path):
    import mailbox

    from inbound_mail import plain

    from newsletter import subscribers
    from newsletter.cli.schedule import _runner, inbound_watcher
    from newsletter.settings import Settings

    root = tmp_path / "Maildir"
    config = Settings(
        inbound_url=f"maildir://{root}",
        unsubscribe_address="unsubscribe@news.improvement.example.org",
        secret_key="schedule-inbound-key-of-32-characters-or-more",
        database_url=f"sqlite:///{tmp_path / 'inbound.db'}",
        smtp_url=None,
        outbox_dir=tmp_path / "outbox",
    )
    runner = _runner(example_dir, config)
    assert inbound_watcher(config.model_copy(update={"inbound_url": None}), runner, stop=threading.Event()) is None
    kim = subscribers.add(runner.engine, "kim@example.org", networks=["qa-leads"], known_networks=["qa-leads"])
    token = runner.config.signer.sign(kim.id, kim.email)
    mailbox.Maildir(root, create=True).add(
        plain(to=f"unsubscribe+{token}@news.improvement.example.org", sender=kim.email, subject="unsubscribe")
    )
    stop = threading.Event()
    watcher = inbound_watcher(config, runner, stop=stop)
    try:
        deadline = time.monotonic() + 20
        while subscribers.by_id(runner.engine, kim.id).status.value != "unsubscribed" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert subscribers.by_id(runner.engine, kim.id).status.value == "unsubscribed"
    finally:
        stop.set()
        watcher.join(timeout=10)
        runner.engine.dispose()
    assert not watcher.is_alive()
