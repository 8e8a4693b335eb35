"""One process working on one send: claim rows from the ledger, send them `concurrency` at a time, record each outcome.

A sender never has more than one message that the server may have taken but the ledger does not
yet call sent, so a crash can duplicate at most `concurrency` messages; everything else is resumed
from the ledger. Results are committed in groups as they come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import sqlalchemy as sa

from .. import ledger, subscribers
from ..assembly import AssembledIssue
from ..errors import DeliveryError, NewsletterError, NotFound, PermanentDeliveryError, RelayRefused, RelayUnavailable
from ..ledger import Claim, Outcome, Send, State
from ..message import Outgoing
from ..transports import Transport
from .config import SendConfig
from .faults import RelayWatch, describe, refusal
from .variants import Variants

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (recipients done, recipients in the send)
RECORD_GATHER = 0.002  # seconds
CLAIM_AHEAD = 128  # at least: claims then take 64 rows or more, each row costing a fiftieth of a claim of one


class Run:
    """Claims rows of one send, sends them `concurrency` at a time, and records each outcome."""

    def __init__(
        self,
        engine: sa.Engine,
        send: Send,
        transport: Transport,
        issue: AssembledIssue,
        config: SendConfig,
        *,
        worker: str,
        stop: asyncio.Event,
        progress: Progress | None = None,
    ) -> None:
        self.engine, self.send, self.transport, self.options = engine, send, transport, config.options
        self.variants = Variants(issue, config)
        self.worker, self.stop, self.progress = worker, stop, progress
        self.lease = dt.timedelta(seconds=self.options.lease)
        self.queue: asyncio.Queue[Claim | None] = asyncio.Queue()
        self.held = 0  # claimed rows not yet recorded
        self.ahead = max(4 * self.options.concurrency, CLAIM_AHEAD)  # rows held at most, in flight included
        self.changed = asyncio.Event()
        self.pending: list[tuple[Outcome, asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.errors_in_a_row = 0
        self.watch = RelayWatch(self.options.relay_fault_after)
        self.bounces: list[tuple[int, str]] = []  # (subscriber id, reply) of hard bounces taken as the readers' own
        self.blamed: list[int] = []  # rows recorded failed for a refusal that turned out to be the relay's
        self.paused: str | None = None
        self.failure: BaseException | None = None
        self.counts: Counter[str] = Counter()
        self.quota_reached = False  # said once per run, not each time the hour frees a message
        self.done = self.total = 0
        # One thread for the database: SQL never blocks the event loop, and never runs concurrently with itself.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="ledger")

    async def db(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        call = partial(function, self.engine, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def __call__(self) -> None:
        try:
            await self._refresh()
            senders = [asyncio.create_task(self._sender()) for _ in range(self.options.concurrency)]
            helpers = [asyncio.create_task(self._recorder()), asyncio.create_task(self._renewer())]
            try:
                await self._feed()
            finally:
                results = await self._wind_down(senders, helpers)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        finally:
            self.executor.shutdown(wait=True)

    async def _wind_down(self, senders: list[asyncio.Task[None]], helpers: list[asyncio.Task[None]]) -> list[Any]:
        """Let the senders finish their messages, stop the helpers, give back our claims; the senders' results."""
        for _ in senders:
            self.queue.put_nowait(None)
        results = await asyncio.gather(*senders, return_exceptions=True)
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await self._settle_refusals()
        await self.db(ledger.release, worker=self.worker)
        if self.paused:
            await self.db(ledger.pause, self.send.id, self.paused)
        return results

    async def _settle_refusals(self) -> None:
        """Put back the rows the relay refused alike; bounce the readers whose own refusal said so."""
        if self.blamed:
            back = await self.db(ledger.requeue, self.blamed, worker=self.worker)
            self.counts["failed"] -= back
            self.done -= back
        else:
            self._readers_refused(self.watch.settle())
        await self._bounce_readers()

    def _readers_refused(self, settled: list[tuple[Claim, PermanentDeliveryError]]) -> None:
        self.bounces.extend((claim.subscriber_id, describe(error)) for claim, error in settled if error.hard_bounce)

    async def _bounce_readers(self) -> None:
        bounces, self.bounces = self.bounces, []
        for subscriber_id, reply in bounces:
            await self.db(_bounce, subscriber_id, reply)
        self.counts["bounced"] += len(bounces)

    async def _refresh(self) -> None:
        """Read the whole send's progress (every process's) from the ledger and report it."""
        tally = await self.db(ledger.tally, self.send.id)
        self.done, self.total = tally.done, tally.total
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    # the feeder ----------------------------------------------------------------------------

    async def _feed(self) -> None:
        """Keep the senders supplied until the send is done, paused, or we are told to stop."""
        await self.db(ledger.release_dead, self.send.id)
        checked = time.monotonic()
        while not (self.stop.is_set() or self.paused):
            if self.failure is not None:
                raise self.failure
            claimed = await self._claim()
            if time.monotonic() - checked > self.options.poll:
                checked = time.monotonic()
                if await self._paused_elsewhere():
                    return
            if claimed:
                continue
            if self.held:
                self.changed.clear()
                # A sender may have died, or paused the send, while we were claiming: its signal was just cleared.
                if self.failure is None and not (self.paused or self.stop.is_set()):
                    await self.changed.wait()
                continue
            if await self._finished_or_waited():
                return

    async def _claim(self) -> int:
        """Claim rows in batches of at least half `ahead` and queue them for the senders; how many.

        A claim costs a transaction whatever its size: claiming one or two rows as each is recorded
        took more of the CPU than building and signing the messages.
        """
        room = self.ahead - self.held
        if room < self.ahead // 2:
            return 0
        claims, suppressed = await self.db(
            ledger.claim, self.send, worker=self.worker, limit=room, lease=self.lease, per_hour=self.options.per_hour
        )
        self.counts["suppressed"] += suppressed
        self.done += suppressed
        for claim in claims:
            self.queue.put_nowait(claim)
        self.held += len(claims)
        return len(claims)

    async def _finished_or_waited(self) -> bool:
        """Nothing held or due: True if the send is finished or paused, else wait for retries and others' claims."""
        if await self.db(ledger.finish, self.send.id) or await self._paused_elsewhere():
            return True
        await self.db(ledger.release_dead, self.send.id)
        await self._refresh()
        await sleep(self.stop, await self._until_due())
        return False

    async def _until_due(self) -> float:
        """Seconds until the next row is due and the hourly quota has room for it, at most one poll."""
        due = await self.db(ledger.next_due, self.send.id, lease=self.lease)
        if due is not None and self.options.per_hour is not None:  # due, but perhaps not within the quota
            due = max(due, await self._hourly_room(due))
        wait = self.options.poll if due is None else (due - ledger.now()).total_seconds()
        return max(0.01, min(wait, self.options.poll))

    async def _hourly_room(self, due: dt.datetime) -> dt.datetime:
        """When the hourly quota next has room; said once per run when that holds the send back."""
        room: dt.datetime = await self.db(ledger.hourly_room_at, per_hour=self.options.per_hour, lease=self.lease)
        if room - due > dt.timedelta(seconds=self.options.poll) and not self.quota_reached:
            self.quota_reached = True
            log.warning(
                "the hourly quota of %s messages is used up: the rest of the send goes out as the hour allows"
                " (the next at %s)",
                f"{self.options.per_hour:,}",
                f"{room.astimezone():%H:%M:%S %Z}",
            )
        return room

    async def _paused_elsewhere(self) -> bool:
        reason = (await self.db(ledger.send_by_id, self.send.id)).paused_reason
        if reason:
            self.paused = reason
        return bool(reason)

    def _fail(self, error: BaseException) -> None:
        """A task died: make the feeder stop waiting for it and raise the error."""
        self.failure = self.failure or error
        self.changed.set()

    # the senders ---------------------------------------------------------------------------

    async def _sender(self) -> None:
        try:
            await self._send_claims()
        except BaseException as exc:
            self._fail(exc)
            raise

    async def _send_claims(self) -> None:
        """Send claims one by one, building each message while the previous one's outcome is being recorded."""
        recorded: asyncio.Future[None] | None = None  # the previous outcome, until the ledger has it
        while (claim := await self.queue.get()) is not None:
            message = None if self.stop.is_set() or self.paused else self._build(claim)
            if recorded is not None:
                await recorded  # never two messages the relay may have taken that the ledger does not call sent
                recorded = None
            outcome = None
            if isinstance(message, Outcome):
                outcome = message
            elif message is not None and not (self.stop.is_set() or self.paused):
                outcome = await self._deliver(claim, message)
            if outcome is None:
                self.changed.set()  # the feeder may be waiting for this claim's outcome: there will be none
                continue  # left claimed: released (queued again) when the run ends
            recorded = asyncio.get_running_loop().create_future()
            self.pending.append((outcome, recorded))
            self.wake.set()
        if recorded is not None:
            await recorded

    def _build(self, claim: Claim) -> Outgoing | Outcome:
        """The claim's message, or its failed outcome if its address or name can never make a valid message."""
        composer = self.variants.composer(claim.networks)  # a broken template stops the send; nobody is failed for it
        try:
            return composer.message(subscriber_id=claim.subscriber_id, email=claim.email, name=claim.name)
        except NewsletterError as exc:
            return Outcome(claim.delivery_id, State.FAILED, claim.attempts + 1, f"cannot build the message: {exc}")

    async def _deliver(self, claim: Claim, message: Outgoing) -> Outcome | None:
        """Send one claimed row; its outcome, or None to leave it claimed (the relay is at fault: the send pauses)."""
        try:
            reply = await self.transport.send(message)
        except DeliveryError as exc:
            return self._refused(claim, exc, message.message_id)
        self.errors_in_a_row = 0
        if not self.blamed:
            self._readers_refused(self.watch.delivered())
        return Outcome(claim.delivery_id, State.SENT, claim.attempts + 1, reply, message.message_id)

    def _refused(self, claim: Claim, error: DeliveryError, message_id: str) -> Outcome | None:
        """The outcome of a delivery error, or None when it is the relay's fault (the send then pauses)."""
        attempts, reply = claim.attempts + 1, describe(error)
        if isinstance(error, RelayRefused):
            self._pause(refusal(error))
            return None
        if self.paused and isinstance(error, PermanentDeliveryError | RelayUnavailable):
            return None  # came back after the pause: left queued like the others
        self._error(error)
        if isinstance(error, PermanentDeliveryError):
            fault, settled = self.watch.refused(claim, error)
            self._readers_refused(settled)
            if fault:
                self.blamed = [c.delivery_id for c, _ in self.watch.settle()]
                self._pause(fault)
                return None
            return Outcome(claim.delivery_id, State.FAILED, attempts, reply, message_id)
        if isinstance(error, RelayUnavailable):
            if fault := self.watch.unanswered(error):
                self._pause(fault)
                return None
            attempts = claim.attempts  # the relay's failure, not an attempt at this reader
        elif attempts >= self.options.max_attempts:
            return Outcome(claim.delivery_id, State.FAILED, attempts, reply, message_id)
        retry = ledger.now() + dt.timedelta(seconds=self.options.backoff(max(attempts, 1)))
        return Outcome(claim.delivery_id, State.DEFERRED, attempts, reply, message_id, retry)

    def _pause(self, reason: str) -> None:
        self.paused = self.paused or reason

    def _error(self, error: DeliveryError) -> None:
        self.errors_in_a_row += 1
        if self.errors_in_a_row >= self.options.pause_after_errors:
            self._pause(f"{self.errors_in_a_row} delivery errors in a row, the last: {error}")

    # the recorder and the renewer ----------------------------------------------------------

    async def _recorder(self) -> None:
        """Commit outcomes in groups: all that arrived while the previous group was being written."""
        while True:
            await self.wake.wait()
            await asyncio.sleep(
                RECORD_GATHER
            )  # let more outcomes come in: a commit costs about the same for one or ten
            self.wake.clear()
            batch, self.pending = self.pending, []
            if not batch:
                continue
            try:
                await self.db(ledger.record, [outcome for outcome, _ in batch], worker=self.worker)
                await self._bounce_readers()
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(exc)
                self._fail(exc)
                raise
            for outcome, future in batch:
                self.counts[outcome.state.value] += 1
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
    with contextlib.suppress(NotFound):  # removed meanwhile: nothing left to suppress
        subscribers.set_status(engine, subscriber_id, subscribers.Status.BOUNCED, reason=reply)


async def sleep(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
