"""One firing: send the issue dated that day, or tell the editor why not (missing, invalid, nobody, stopped, missed).

The delivery ledger's one send per issue date makes a second firing (a second scheduler, the
autumn's repeated hour) a no-op instead of a second send, and the notices table a second notice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from .. import delivery, ledger
from ..content import Newsletter
from ..delivery import SendConfig
from ..errors import ContentError, NewsletterError, NoRecipients
from ..folder import load_folder, load_newsletter
from ..message import notice as notice_message
from ..transports import SMTPTransport, Transport
from .notices import Notice, compose, first_notice
from .readiness import IssueCheck, check_issues
from .timing import issue_date, local, repeated_hour

log = logging.getLogger(__name__)

UNSIGNED_WARNING = (
    "sending over SMTP without DKIM: Gmail and Yahoo reject or junk unsigned bulk mail;"
    " set NEWSLETTER_DKIM_KEY_FILE and NEWSLETTER_DKIM_SELECTOR (see `newsletter dns`)"
)


class Outcome(StrEnum):
    SENT = "sent"
    ALREADY_SENT = "already sent"  # the ledger has this date's send: a second firing, or sent by hand
    NO_ISSUE = "no issue"
    NO_RECIPIENTS = "no recipients"  # nobody active in the issue's networks: no send is recorded
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


# telling the editor ------------------------------------------------------------------------------


def editor_address(newsletter: Newsletter) -> str:
    return str(newsletter.reply_to or newsletter.sender.email)


async def tell_editor(newsletter: Newsletter, transport: Transport, notice: Notice) -> str | None:
    """Email the editor (reply_to, else the sender) through `transport`; the address, or None if that failed too."""
    to = editor_address(newsletter)
    try:
        await transport.send(notice_message(newsletter, to=to, subject=notice.subject, text=notice.text))
    except Exception:  # the notice is the last resort: its failure goes to the log, not up
        log.exception("could not email the editor at %s", to)
        return None
    return to


async def tell_editor_once(
    engine: sa.Engine,
    newsletter: Newsletter,
    transport: Transport,
    notice: Notice,
    *,
    at: dt.datetime,
    date: dt.date,
    kind: str,
) -> str | None:
    """tell_editor, unless the notices table shows this firing's `kind` of notice was sent (by another scheduler, a retry)."""
    if not first_notice(engine, firing_at=at, kind=kind, issue_date=date):
        log.info("the editor was already told about the firing at %s (%s)", at.isoformat(), kind)
        return None
    return await tell_editor(newsletter, transport, notice)


# one firing --------------------------------------------------------------------------------------


async def fire(
    root: Path | str,
    engine: sa.Engine,
    transport: Transport,
    *,
    config: SendConfig,
    at: dt.datetime,
    known: Newsletter | None = None,
    date: dt.date | None = None,
    stop: asyncio.Event | None = None,
) -> FiringResult:
    """One firing due at `at`: send the issue dated that day, or tell the editor why not.

    `config` is the send configuration as `newsletter send` builds it. `known` is the newsletter as the scheduler started with it, so the editor can
    still be told when newsletter.yaml itself no longer loads. `date` names the issue instead of
    `at` (resuming an interrupted send); `stop` set ends the send early, cleanly, to be resumed.
    """
    root = Path(root)
    try:
        newsletter, _ = load_newsletter(root)
    except ContentError as exc:
        if known is None or known.schedule is None:
            detail = f"newsletter.yaml has errors: {exc.problems[0]}"
            return _logged(FiringResult(at, at.date(), Outcome.INVALID, detail), level=logging.ERROR)
        newsletter = known
    zone = newsletter.schedule.zone if newsletter.schedule else ZoneInfo("UTC")
    if date is None and repeated_hour(at, zone):
        detail = "this wall-clock time already fired an hour ago"
        return _logged(FiringResult(at, issue_date(at, zone), Outcome.REPEAT, detail))
    date = date or issue_date(at, zone)
    if already_sent(engine, date):
        return _logged(FiringResult(at, date, Outcome.ALREADY_SENT, "the ledger has this issue's send, finished"))
    [ready] = check_issues(root, [date])
    if not ready.ok:
        return await _not_ready(engine, newsletter, transport, ready, at=at, zone=zone)
    return await _send(root, engine, newsletter, transport, config=config, at=at, date=date, stop=stop)


async def _not_ready(
    engine: sa.Engine,
    newsletter: Newsletter,
    transport: Transport,
    ready: IssueCheck,
    *,
    at: dt.datetime,
    zone: ZoneInfo,
) -> FiringResult:
    """The firing's issue is missing or fails check: nothing is sent, and the editor is told what to fix."""
    when = local(at, zone)
    if ready.exists:
        outcome = Outcome.INVALID
        notice = compose("invalid", date=ready.date, when=when, problems=ready.problems + ready.elsewhere)
    else:
        outcome = Outcome.NO_ISSUE
        notice = compose("no_issue", date=ready.date, when=when, path=ready.path)
    told = await tell_editor_once(engine, newsletter, transport, notice, at=at, date=ready.date, kind=outcome)
    return _logged(FiringResult(at, ready.date, outcome, ready.describe(), told=told), level=logging.ERROR)


async def _send(
    root: Path,
    engine: sa.Engine,
    newsletter: Newsletter,
    transport: Transport,
    *,
    config: SendConfig,
    at: dt.datetime,
    date: dt.date,
    stop: asyncio.Event | None,
) -> FiringResult:
    """Send the issue of `date` as `newsletter send` would; if the send cannot start or stops, the editor is told."""
    if config.dkim is None and isinstance(transport, SMTPTransport):
        log.warning("issue %s: %s", date, UNSIGNED_WARNING)  # once per send, as `newsletter send` warns
    try:
        summary = await delivery.send_issue(load_folder(root), engine, transport, config=config, date=date, stop=stop)
    except NoRecipients as exc:
        notice = compose("no_recipients", date=date, networks=sorted(exc.networks))
        outcome, detail = Outcome.NO_RECIPIENTS, str(exc)
    except ContentError as exc:  # the folder changed between the check and the send
        notice = compose("invalid_at_send", date=date, problems=exc.problems)
        outcome, detail = Outcome.INVALID, str(exc.problems[0])
    except NewsletterError as exc:
        notice = compose("send_stopped", date=date, error=exc)
        outcome, detail = Outcome.FAILED, str(exc)
    else:
        return _sent(at, date, summary, stopped=stop is not None and stop.is_set())
    told = await tell_editor_once(engine, newsletter, transport, notice, at=at, date=date, kind=outcome)
    return _logged(FiringResult(at, date, outcome, detail, told=told), level=logging.ERROR)


def _sent(at: dt.datetime, date: dt.date, summary: Any, *, stopped: bool) -> FiringResult:
    """The result of a send that ran: finished, left for another process, or stopped with the scheduler."""
    counts = ", ".join(
        f"{summary.this_run[k]} {k}" for k in ("sent", "failed", "suppressed", "deferred") if summary.this_run[k]
    )
    if not summary.finished and stopped:
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
    schedule = newsletter.schedule or known.schedule
    assert schedule is not None, "the scheduler starts only with a schedule"
    date = issue_date(at, schedule.zone)
    if ledger.get_send(engine, date) is not None:
        return _logged(FiringResult(at, date, Outcome.ALREADY_SENT, "missed, but the ledger has this issue's send"))
    notice = compose("missed", date=date, when=local(at, schedule.zone), hours=late.total_seconds() / 3600)
    told = await tell_editor_once(engine, newsletter, transport, notice, at=at, date=date, kind=Outcome.MISSED)
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
