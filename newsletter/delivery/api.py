"""What the shells call: send an issue, help with whatever send is running, send a test copy, rehearse a send."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .. import ledger, subscribers
from ..assembly import assemble
from ..errors import NewsletterError, NoRecipients, NotFound, SendPaused
from ..folder import Folder, load_folder
from ..ledger import Send
from ..message import Outgoing
from ..transports import Transport
from .config import SendConfig
from .run import Progress, Run, sleep
from .variants import Variants, composer, issue_networks

Log = Callable[[str], None]


@dataclass(frozen=True)
class SendSummary:
    issue_date: dt.date
    networks: frozenset[str]
    tally: ledger.Tally  # the whole send, all processes
    this_run: Counter[str]  # outcomes of this process: sent, deferred (retries), failed, suppressed, bounced
    elapsed: float
    finished: bool


async def send_issue(
    folder: Folder,
    engine: sa.Engine,
    transport: Transport,
    *,
    config: SendConfig,
    date: dt.date | None = None,
    networks: Iterable[str] | None = None,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> SendSummary:
    """Send the issue of `date` (default: newest) to every recipient, or finish its send if it was started.

    Nobody is sent the issue twice; a paused send resumes. Raises NoRecipients, recording nothing,
    when nobody is in the issue's networks, and SendPaused when too many deliveries in a row fail;
    returns when nothing is left (or `stop` is set). A send that fails before anything was tried
    (a template error, a transport that breaks) is removed from the ledger, so the archive never lists it.
    """
    issue = assemble(folder, date)
    chosen = issue_networks(issue, networks)
    started = time.monotonic()
    send, _ = await asyncio.to_thread(ledger.create_send, engine, issue.date, chosen)
    if send.paused_reason:
        await asyncio.to_thread(ledger.resume, engine, send.id)
    run = Run(
        engine,
        send,
        transport,
        issue,
        config,
        worker=ledger.worker_id(),
        stop=stop or asyncio.Event(),
        progress=progress,
    )
    try:
        await run()
    except Exception:
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # the database may be what failed: keep its error
            await asyncio.to_thread(ledger.discard_untried, engine, send.id)
        raise
    if run.paused:
        raise SendPaused(f"the send of {issue.date} paused: {run.paused}; fix the cause and run the send again")
    tally = await asyncio.to_thread(ledger.tally, engine, send.id)
    finished = await asyncio.to_thread(ledger.finish, engine, send.id)
    return SendSummary(issue.date, send.networks, tally, run.counts, time.monotonic() - started, finished)


async def work(
    engine: sa.Engine,
    root: Path,
    transport: Transport,
    *,
    config: SendConfig,
    stop: asyncio.Event,
    log: Log = lambda line: None,
) -> Counter[str]:
    """Help with whatever send is running (the oldest first) until `stop` is set; what this process sent.

    The newsletter folder is read again for each send, so a long-lived worker sees new issues.
    """
    worker = ledger.worker_id()
    total: Counter[str] = Counter()
    waiting = False
    while not stop.is_set():
        sends = await asyncio.to_thread(ledger.active_sends, engine)
        if not sends:
            if not waiting:
                log("waiting for a send")
                waiting = True
            await sleep(stop, config.options.poll)
            continue
        waiting = False
        total.update(await _help(engine, root, transport, sends[0], config, worker=worker, stop=stop, log=log))
    return total


async def _help(
    engine: sa.Engine,
    root: Path,
    transport: Transport,
    send: Send,
    config: SendConfig,
    *,
    worker: str,
    stop: asyncio.Event,
    log: Log,
) -> Counter[str]:
    """One turn of `work` on `send`: what this process sent of it before it finished, paused or failed."""
    try:
        issue = assemble(await asyncio.to_thread(load_folder, root), send.issue_date)
    except NewsletterError as exc:
        log(f"cannot help with the send of {send.issue_date}: {exc}")
        await sleep(stop, max(config.options.poll, 30))
        return Counter()
    log(f"sending the issue of {send.issue_date}")
    run = Run(engine, send, transport, issue, config, worker=worker, stop=stop)
    try:
        await run()
    except sa.exc.DBAPIError as exc:  # the database went away: our claims lapse with their lease; try again
        log(f"database error, retrying in a while: {exc.orig}")
        await sleep(stop, max(config.options.poll, 5))
    log(f"the issue of {send.issue_date}: " + (f"paused: {run.paused}" if run.paused else _counts(run.counts)))
    return run.counts


def _counts(counts: Counter[str]) -> str:
    return (
        ", ".join(f"{counts[k]} {k}" for k in ("sent", "deferred", "failed", "suppressed") if counts[k])
        or "nothing to do"
    )


async def send_test(
    folder: Folder,
    transport: Transport,
    address: str,
    *,
    config: SendConfig,
    date: dt.date | None = None,
    networks: Iterable[str] | None = None,
) -> Outgoing:
    """One message to `address`, marked as a test, as a reader of `networks` (default: every network) sees it.

    The ledger is not touched. `date` defaults to the newest issue file: a test copy is for a draft.
    """
    issue = assemble(folder, date)
    reader = issue_networks(issue, networks) if networks else issue.newsletter.network_ids
    message = composer(issue, frozenset(reader), config, test=True).message(
        subscriber_id=0, email=address.strip(), name=None
    )
    await transport.send(message)
    return message


@dataclass(frozen=True)
class Audience:
    """Whom a send of an issue would reach now: its networks and how many active subscribers are in them."""

    issue_date: dt.date
    networks: frozenset[str]
    count: int

    def require(self) -> Audience:
        """This audience, or NoRecipients when it is nobody."""
        if not self.count:
            raise NoRecipients(self.issue_date, self.networks)
        return self


def audience(
    folder: Folder, engine: sa.Engine, *, date: dt.date | None = None, networks: Iterable[str] | None = None
) -> Audience:
    """Whom a send of the issue of `date` (to `networks`, default the issue's) would reach now."""
    issue = assemble(folder, date)
    chosen = issue_networks(issue, networks)
    return Audience(issue.date, chosen, ledger.recipient_count(engine, chosen))


def due_date(folder: Folder, engine: sa.Engine, *, today: dt.date) -> dt.date:
    """The issue a send without a date sends: the newest dated `today` or earlier, unless its send finished.

    Never one dated after `today`; NotFound, saying which issue is next and when, if none is due.
    """
    dates = folder.dates()
    past = [d for d in dates if d <= today]
    if past:
        send = ledger.get_send(engine, past[-1])
        if send is None or send.finished_at is None:
            return past[-1]
        why = f"the issue of {past[-1]} was sent on {send.finished_at:%Y-%m-%d}"
    else:
        why = f"no issue is dated {today} or earlier"
    later = [d for d in dates if d > today]
    if not later:
        raise NotFound(f"no issue is due: {why}, and no later issue file is written yet")
    raise NotFound(
        f"no issue is due: {why}; the next is the issue of {later[0]}, due {in_days(later[0], today)}"
        f" (`newsletter send --date {later[0]}` sends it now)"
    )


def in_days(date: dt.date, today: dt.date) -> str:
    """How far `date` is from `today`, in words: "today", "in 1 day", "in 3 days", "3 days ago"."""
    days = (date - today).days
    if days == 0:
        return "today"
    count = f"{abs(days)} day{'s' if abs(days) != 1 else ''}"
    return f"in {count}" if days > 0 else f"{count} ago"


@dataclass(frozen=True)
class Rehearsal:
    """What a send would do now: recipients per network and per variant, and the size of each variant's message."""

    issue_date: dt.date
    subject: str
    networks: frozenset[str]
    per_network: Counter[str]
    per_variant: Counter[frozenset[str]]  # networks -> recipients
    sizes: dict[frozenset[str], int]  # networks -> bytes of one message
    existing: ledger.Tally | None  # the ledger's rows if this issue's send was already started


async def rehearse(
    folder: Folder,
    engine: sa.Engine,
    transport: Transport,
    *,
    config: SendConfig,
    date: dt.date | None = None,
    networks: Iterable[str] | None = None,
) -> Rehearsal:
    """A dry run: count today's recipients and build one message per variant for `transport`; nothing is recorded."""
    issue = assemble(folder, date)
    chosen = issue_networks(issue, networks)
    variants = Variants(issue, config)
    per_network: Counter[str] = Counter()
    per_variant: Counter[frozenset[str]] = Counter()
    sizes: dict[frozenset[str], int] = {}
    for subscriber in subscribers.recipients(engine, chosen):  # streamed by pages; a dry run may block the loop
        variant = subscriber.networks & chosen
        per_variant[variant] += 1
        per_network.update(variant)
        if variant not in sizes:
            message = variants.composer(variant).message(
                subscriber_id=subscriber.id, email=subscriber.email, name=subscriber.name
            )
            await transport.send(message)
            sizes[variant] = len(message.data)
    send = await asyncio.to_thread(ledger.get_send, engine, issue.date)
    existing = await asyncio.to_thread(ledger.tally, engine, send.id) if send else None
    return Rehearsal(issue.date, issue.subject, chosen, per_network, per_variant, sizes, existing)
