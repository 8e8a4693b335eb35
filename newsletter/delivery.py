"""Sending an issue to every recipient through the ledger: resumable, retried, shared by several processes.

One Composer per network variant (built when its first reader comes up), `concurrency` messages
in flight, and results committed in groups as they come back. A sender never has more than one
message that the server may have taken but the ledger does not yet call sent, so a crash can
duplicate at most `concurrency` messages; everything else is resumed from the ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from . import ledger, subscribers
from .assembly import AssembledIssue, assemble
from .errors import DeliveryError, NewsletterError, NotFound, PermanentDeliveryError, SendPaused, SubscriberError
from .folder import Folder, load_folder
from .ledger import Claim, Outcome, Send, State
from .message import Composer, Outgoing
from .render import render
from .tokens import Signer

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .dkim import DKIMKey


class Transport(Protocol):
    """Where messages go (transports/: smtp, outbox, memory)."""

    async def send(self, message: Outgoing) -> str: ...

    async def close(self) -> None: ...


Progress = Callable[[int, int], None]  # (recipients done, recipients in the send)
Log = Callable[[str], None]


@dataclass(frozen=True)
class DeliveryOptions:
    concurrency: int = 4  # messages in flight: match the SMTP pool
    retry_base: float = 2.0  # seconds before the first retry of a 4xx; doubled each time, with jitter
    retry_max: float = 600.0
    max_attempts: int = 6  # a recipient still refused with 4xx after this many attempts fails
    pause_after_errors: int = 50  # consecutive delivery errors before the send pauses
    lease: float = 60.0  # seconds a claim holds without renewal; then another process may take the row
    poll: float = 1.0  # seconds between looks at the ledger when there is nothing to claim
    per_hour: int | None = None  # messages in any hour, shared by every sender of the store (the relay's quota)

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts` + 1: exponential, with jitter so retries do not arrive together."""
        delay = min(self.retry_max, self.retry_base * 2 ** (attempts - 1))
        return delay * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class SendSummary:
    issue_date: dt.date
    networks: frozenset[str]
    tally: ledger.Tally  # the whole send, all processes
    this_run: Counter  # outcomes of this process: sent, deferred (retries), failed, suppressed, bounced
    elapsed: float
    finished: bool


@dataclass(frozen=True)
class Variants:
    """The issue's Composers, one per set of networks a reader belongs to, each rendered once when first needed."""

    issue: AssembledIssue
    signer: Signer
    dkim: DKIMKey | None = None
    bounce_address: str | None = None
    _cache: dict = field(default_factory=dict, compare=False)

    def composer(self, networks: frozenset[str]) -> Composer:
        found = self._cache.get(networks)
        if found is None:
            found = self._cache[networks] = Composer(
                self.issue.newsletter,
                render(self.issue.variant(networks)),
                issue_date=self.issue.date,
                signer=self.signer,
                dkim=self.dkim,
                bounce_address=self.bounce_address,
            )
        return found


def describe(error: DeliveryError) -> str:
    """The server's reply as the ledger keeps it: "550 5.1.1 no such user", or what went wrong."""
    return f"{error.code} {error.reply}".strip() if error.code else str(error)


# one process working on one send ------------------------------------------------------------


class _Run:
    """Claims rows of one send, sends them `concurrency` at a time, and records each outcome."""

    def __init__(
        self,
        engine: sa.Engine,
        send: Send,
        transport: Transport,
        variants: Variants,
        options: DeliveryOptions,
        *,
        worker: str,
        stop: asyncio.Event,
        progress: Progress | None,
    ) -> None:
        self.engine, self.send, self.transport, self.variants, self.options = engine, send, transport, variants, options
        self.worker, self.stop, self.progress = worker, stop, progress
        self.lease = dt.timedelta(seconds=options.lease)
        self.queue: asyncio.Queue[Claim | None] = asyncio.Queue()
        self.held = 0  # claimed rows not yet recorded
        self.changed = asyncio.Event()
        self.pending: list[tuple[Outcome, Claim, bool, asyncio.Future]] = []
        self.wake = asyncio.Event()
        self.errors_in_a_row = 0
        self.paused: str | None = None
        self.failure: BaseException | None = None
        self.counts: Counter = Counter()
        self.quota_reached = False  # said once per run, not each time the hour frees a message
        self.done = self.total = 0
        # One thread for the database: SQL never blocks the event loop, and never runs concurrently with itself.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ledger")

    async def db(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(function, self.engine, *args, **kwargs))

    async def __call__(self) -> None:
        try:
            tally = await self.db(ledger.tally, self.send.id)
            self.done, self.total = tally.done, tally.total
            self._report()
            senders = [asyncio.create_task(self._sender()) for _ in range(self.options.concurrency)]
            recorder = asyncio.create_task(self._recorder())
            renewer = asyncio.create_task(self._renewer())
            try:
                await self._feed()
            finally:
                for _ in senders:
                    self.queue.put_nowait(None)
                results = await asyncio.gather(*senders, return_exceptions=True)
                recorder.cancel()
                renewer.cancel()
                await asyncio.gather(recorder, renewer, return_exceptions=True)
                await self.db(ledger.release, worker=self.worker)
                if self.paused:
                    await self.db(ledger.pause, self.send.id, self.paused)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        finally:
            self.executor.shutdown(wait=True)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    async def _feed(self) -> None:
        """Keep the senders supplied until the send is done, paused, or we are told to stop."""
        await self.db(ledger.release_dead, self.send.id)
        prefetch = 2 * self.options.concurrency
        checked = time.monotonic()
        while not (self.stop.is_set() or self.paused):
            if self.failure is not None:
                raise self.failure
            claims: list[Claim] = []
            if self.held < prefetch:
                claims, suppressed = await self.db(
                    ledger.claim, self.send, worker=self.worker, limit=prefetch - self.held, lease=self.lease,
                    per_hour=self.options.per_hour,
                )
                self.counts["suppressed"] += suppressed
                self.done += suppressed
                for claim in claims:
                    self.queue.put_nowait(claim)
                self.held += len(claims)
            if time.monotonic() - checked > self.options.poll:
                checked = time.monotonic()
                if await self._paused_elsewhere():
                    return
            if claims:
                continue
            if self.held:
                self.changed.clear()
                if self.failure is None:  # a sender may have died while we were claiming
                    await self.changed.wait()
                continue
            # Nothing held and nothing due: finished, or waiting on retries and other processes' claims.
            if await self.db(ledger.finish, self.send.id) or await self._paused_elsewhere():
                return
            await self.db(ledger.release_dead, self.send.id)
            tally = await self.db(ledger.tally, self.send.id)
            self.done, self.total = tally.done, tally.total
            self._report()
            due = await self.db(ledger.next_due, self.send.id, lease=self.lease)
            if due is not None and self.options.per_hour is not None:  # due, but perhaps not within the quota
                room = await self.db(ledger.hourly_room_at, per_hour=self.options.per_hour, lease=self.lease)
                if room - due > dt.timedelta(seconds=self.options.poll) and not self.quota_reached:
                    self.quota_reached = True
                    log.warning("the hourly quota of %s messages is used up: the rest of the send goes out as the hour"
                                " allows (the next at %s)", f"{self.options.per_hour:,}", f"{room.astimezone():%H:%M:%S %Z}")
                due = max(due, room)
            wait = self.options.poll if due is None else (due - ledger.now()).total_seconds()
            await _sleep(self.stop, max(0.01, min(wait, self.options.poll)))

    async def _paused_elsewhere(self) -> bool:
        reason = (await self.db(ledger.send_by_id, self.send.id)).paused_reason
        if reason:
            self.paused = reason
        return bool(reason)

    def _fail(self, error: BaseException) -> None:
        """A task died: make the feeder stop waiting for it and raise the error."""
        self.failure = self.failure or error
        self.changed.set()

    async def _sender(self) -> None:
        try:
            await self._send_claims()
        except BaseException as exc:
            self._fail(exc)
            raise

    async def _send_claims(self) -> None:
        while (claim := await self.queue.get()) is not None:
            if self.stop.is_set() or self.paused:
                self.changed.set()  # the feeder may be waiting for this claim's outcome: there will be none
                continue  # left claimed: released when the run ends
            outcome, bounced = await self._deliver(claim)
            future = asyncio.get_running_loop().create_future()
            self.pending.append((outcome, claim, bounced, future))
            self.wake.set()
            await future

    async def _deliver(self, claim: Claim) -> tuple[Outcome, bool]:
        attempts = claim.attempts + 1
        composer = self.variants.composer(claim.networks)  # a broken template stops the send; nobody is failed for it
        try:
            message = composer.message(subscriber_id=claim.subscriber_id, email=claim.email, name=claim.name)
        except NewsletterError as exc:  # an address or name that can never make a valid message
            return Outcome(claim.delivery_id, State.FAILED, attempts, f"cannot build the message: {exc}"), False
        try:
            reply = await self.transport.send(message)
        except PermanentDeliveryError as exc:
            self._error(exc)
            return Outcome(claim.delivery_id, State.FAILED, attempts, describe(exc), message.message_id), exc.hard_bounce
        except DeliveryError as exc:
            self._error(exc)
            if attempts >= self.options.max_attempts:
                return Outcome(claim.delivery_id, State.FAILED, attempts, describe(exc), message.message_id), False
            retry = ledger.now() + dt.timedelta(seconds=self.options.backoff(attempts))
            return Outcome(claim.delivery_id, State.DEFERRED, attempts, describe(exc), message.message_id, retry), False
        self.errors_in_a_row = 0
        return Outcome(claim.delivery_id, State.SENT, attempts, reply, message.message_id), False

    def _error(self, error: DeliveryError) -> None:
        self.errors_in_a_row += 1
        if self.errors_in_a_row >= self.options.pause_after_errors and not self.paused:
            self.paused = f"{self.errors_in_a_row} delivery errors in a row, the last: {error}"

    async def _recorder(self) -> None:
        """Commit outcomes in groups: all that arrived while the previous group was being written."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.pending = self.pending, []
            if not batch:
                continue
            try:
                await self.db(ledger.record, [o for o, *_ in batch], worker=self.worker)
                for outcome, claim, bounced, _ in batch:
                    if bounced:
                        await self.db(_bounce, claim.subscriber_id, outcome.reply)
            except BaseException as exc:
                for *_, future in batch:
                    future.set_exception(exc)
                self._fail(exc)
                raise
            for outcome, _, bounced, future in batch:
                self.counts[outcome.state.value] += 1
                self.counts["bounced"] += bounced
                self.done += outcome.state != State.DEFERRED
                future.set_result(None)
            self.held -= len(batch)
            self.changed.set()
            self._report()

    async def _renewer(self) -> None:
        while True:
            await asyncio.sleep(self.options.lease / 3)
            await self.db(ledger.renew, worker=self.worker)


def _bounce(engine: sa.Engine, subscriber_id: int, reply: str) -> None:
    try:
        subscribers.set_status(engine, subscriber_id, subscribers.Status.BOUNCED, reason=reply)
    except NotFound:
        pass  # removed meanwhile: nothing left to suppress


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


# what the shells call ------------------------------------------------------------------------


def issue_networks(issue: AssembledIssue, networks: Iterable[str] | None) -> frozenset[str]:
    """The networks a send goes to: the issue's, or the chosen ones among them."""
    chosen = frozenset(networks or issue.networks)
    unknown = chosen - set(issue.networks)
    if unknown:
        raise SubscriberError(
            f"the issue of {issue.date} does not go to {', '.join(sorted(unknown))}"
            f" (it goes to {', '.join(issue.networks)})"
        )
    return chosen


async def send_issue(
    folder: Folder,
    engine: sa.Engine,
    transport: Transport,
    *,
    signer: Signer,
    date: dt.date | None = None,
    networks: Iterable[str] | None = None,
    options: DeliveryOptions = DeliveryOptions(),
    dkim: DKIMKey | None = None,
    bounce_address: str | None = None,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> SendSummary:
    """Send the issue of `date` (default: newest) to every recipient, or finish its send if it was started.

    Nobody is sent the issue twice; a paused send resumes. Raises SendPaused when too many
    deliveries in a row fail; returns when nothing is left (or `stop` is set).
    """
    issue = assemble(folder, date)
    chosen = issue_networks(issue, networks)
    started = time.monotonic()
    send, _ = await asyncio.to_thread(ledger.create_send, engine, issue.date, chosen)
    if send.paused_reason:
        await asyncio.to_thread(ledger.resume, engine, send.id)
    run = _Run(
        engine,
        send,
        transport,
        Variants(issue, signer, dkim, bounce_address),
        options,
        worker=ledger.worker_id(),
        stop=stop or asyncio.Event(),
        progress=progress,
    )
    await run()
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
    signer: Signer,
    options: DeliveryOptions = DeliveryOptions(),
    dkim: DKIMKey | None = None,
    bounce_address: str | None = None,
    stop: asyncio.Event,
    log: Log = lambda line: None,
) -> Counter:
    """Help with whatever send is running (the oldest first) until `stop` is set; what this process sent.

    The newsletter folder is read again for each send, so a long-lived worker sees new issues.
    """
    worker = ledger.worker_id()
    total: Counter = Counter()
    waiting = False
    while not stop.is_set():
        sends = await asyncio.to_thread(ledger.active_sends, engine)
        if not sends:
            if not waiting:
                log("waiting for a send")
                waiting = True
            await _sleep(stop, options.poll)
            continue
        waiting = False
        send = sends[0]
        try:
            issue = assemble(await asyncio.to_thread(load_folder, root), send.issue_date)
        except NewsletterError as exc:
            log(f"cannot help with the send of {send.issue_date}: {exc}")
            await _sleep(stop, max(options.poll, 30))
            continue
        log(f"sending the issue of {send.issue_date}")
        run = _Run(engine, send, transport, Variants(issue, signer, dkim, bounce_address), options, worker=worker, stop=stop, progress=None)
        try:
            await run()
        except sa.exc.DBAPIError as exc:  # the database went away: our claims lapse with their lease; try again
            log(f"database error, retrying in a while: {exc.orig}")
            await _sleep(stop, max(options.poll, 5))
        total.update(run.counts)
        log(f"the issue of {send.issue_date}: " + (f"paused: {run.paused}" if run.paused else _counts(run.counts)))
    return total


def _counts(counts: Counter) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in ("sent", "deferred", "failed", "suppressed") if counts[k]) or "nothing to do"


async def send_test(
    folder: Folder,
    transport: Transport,
    address: str,
    *,
    signer: Signer,
    date: dt.date | None = None,
    dkim: DKIMKey | None = None,
) -> Outgoing:
    """One message to `address`, as a reader of every network sees it, marked as a test; the ledger is not touched."""
    issue = assemble(folder, date)
    composer = Composer(
        issue.newsletter,
        render(issue.variant(issue.newsletter.network_ids)),
        issue_date=issue.date,
        signer=signer,
        dkim=dkim,
        test=True,
    )
    message = composer.message(subscriber_id=0, email=address.strip(), name=None)
    await transport.send(message)
    return message


@dataclass(frozen=True)
class Rehearsal:
    """What a send would do now: recipients per network and per variant, and the size of each variant's message."""

    issue_date: dt.date
    subject: str
    networks: frozenset[str]
    per_network: Counter
    per_variant: Counter  # frozenset of networks -> recipients
    sizes: dict  # frozenset of networks -> bytes of one message
    existing: ledger.Tally | None  # the ledger's rows if this issue's send was already started


async def rehearse(
    folder: Folder,
    engine: sa.Engine,
    transport: Transport,
    *,
    signer: Signer,
    date: dt.date | None = None,
    networks: Iterable[str] | None = None,
    dkim: DKIMKey | None = None,
) -> Rehearsal:
    """A dry run: count today's recipients and build one message per variant for `transport`; nothing is recorded."""
    issue = assemble(folder, date)
    chosen = issue_networks(issue, networks)
    variants = Variants(issue, signer, dkim)
    per_network: Counter = Counter()
    per_variant: Counter = Counter()
    sizes: dict = {}
    for subscriber in subscribers.recipients(engine, chosen):  # streamed by pages; a dry run may block the loop
        variant = subscriber.networks & chosen
        per_variant[variant] += 1
        per_network.update(variant)
        if variant not in sizes:
            message = variants.composer(variant).message(subscriber_id=subscriber.id, email=subscriber.email, name=subscriber.name)
            await transport.send(message)
            sizes[variant] = len(message.data)
    send = await asyncio.to_thread(ledger.get_send, engine, issue.date)
    existing = await asyncio.to_thread(ledger.tally, engine, send.id) if send else None
    return Rehearsal(issue.date, issue.subject, chosen, per_network, per_variant, sizes, existing)
