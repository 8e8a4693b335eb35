"""Apply the inbound mailbox to the subscriber store: bounces, complaints and unsubscribe requests change statuses.

Each message is classified, its subscriber found (VERP address first, then the signed token, our
original Message-ID, and only then the address the body names), and the change recorded in one
transaction together with the message's key, so the same message handled twice changes nothing
twice. Every message leaves the inbox for Processed or Unrecognised; nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import subscribers
from ..errors import BadToken
from ..subscribers import Status, Subscriber
from ..tokens import Signer
from . import bounces
from .bounces import BounceKind
from .classify import Classified, Failure, Kind, classify
from .mailbox import PROCESSED, UNRECOGNISED, Mailbox, MailboxError

MAX_ID = 2**31 - 1  # a token or VERP id beyond the id column's range cannot be ours
POLL_SECONDS = 60.0  # --watch without IMAP IDLE: how often the mailbox is read again
REASON_CHARS = 200


@dataclass(frozen=True)
class Options:
    """How inbound mail is read; the defaults are Mailman's (a soft bounce a day, three within a week: bounced)."""

    bounce_address: str | None = None
    unsubscribe_address: str | None = None
    soft_bounce_limit: int = 3
    soft_bounce_days: int = 7


@dataclass
class Report:
    """What a run did: counts for the summary line, each status change, and each message a person should look at."""

    counts: Counter[str] = field(default_factory=Counter)
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(self.counts[kind] for kind in (*Kind, "refused", "already handled"))

    def summary(self) -> str:
        """`12 messages: 7 bounces (3 hard), 1 complaint, 2 unsubscribes, 2 auto-replies ignored`."""
        parts = []
        if self.counts[Kind.BOUNCE]:
            parts.append(_plural(self.counts[Kind.BOUNCE], "bounce") + f" ({self.counts['hard']} hard)")
        parts += [
            _plural(self.counts[Kind.COMPLAINT], "complaint"),
            _plural(self.counts[Kind.UNSUBSCRIBE], "unsubscribe"),
        ]
        if self.counts[Kind.AUTO_REPLY]:
            parts.append(_plural(self.counts[Kind.AUTO_REPLY], "auto-reply", "auto-replies") + " ignored")
        parts += [f"{self.counts['refused']} refused", f"{self.counts[Kind.UNRECOGNISED]} unrecognised"]
        parts.append(f"{self.counts['already handled']} already handled")
        shown = [part for part in parts if not part.startswith("0 ")]
        return _plural(self.messages, "message") + (": " + ", ".join(shown) if shown else "")


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def process(mailbox: Mailbox, engine: sa.Engine, *, signer: Signer, options: Options = Options()) -> Report:
    """Handle every message in the mailbox's inbox once, moving each out of it; the report says what changed."""
    report = Report()
    for incoming in mailbox.unhandled():
        mailbox.move(incoming.key, handle(incoming.data, engine, signer=signer, options=options, report=report))
    return report


def handle(data: bytes, engine: sa.Engine, *, signer: Signer, options: Options, report: Report) -> str:
    """Apply one raw message to the store; the folder it belongs in (PROCESSED or UNRECOGNISED)."""
    found = classify(data, bounce_address=options.bounce_address, unsubscribe_address=options.unsubscribe_address)
    if found.kind in (Kind.UNRECOGNISED, Kind.AUTO_REPLY):
        report.counts[found.kind] += 1
        if found.kind is Kind.UNRECOGNISED:
            report.problems.append(f"{found.key}: unrecognised, {found.why}: moved to {UNRECOGNISED}")
            return UNRECOGNISED
        return PROCESSED
    subscriber, clue = find_subscriber(engine, found, signer=signer)
    if found.kind is Kind.UNSUBSCRIBE and subscriber is None:
        report.counts["refused"] += 1
        report.problems.append(
            f"{found.key}: unsubscribe request refused, {clue}: nobody changed; moved to {UNRECOGNISED}"
        )
        return UNRECOGNISED
    try:
        with engine.begin() as conn:
            if bounces.already_handled(conn, found.key):
                report.counts["already handled"] += 1
                return PROCESSED
            outcome = _apply(conn, found, subscriber, options)
            bounces.mark_handled(conn, found.key, kind=found.kind.value, outcome=outcome, when=_now())
    except sa.exc.IntegrityError:  # another reader of the same mailbox handled it a moment ago
        report.counts["already handled"] += 1
        return PROCESSED
    report.counts[found.kind] += 1
    report.counts["hard"] += found.kind is Kind.BOUNCE and found.hard
    if subscriber is None:
        report.problems.append(f"{found.key}: {found.kind} for no known subscriber ({clue}): nothing changed")
    elif outcome.startswith("now "):
        report.changes.append(f"{subscriber.email}: {outcome}")
    return PROCESSED


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# whom it is about -----------------------------------------------------------------------------


def find_subscriber(engine: sa.Engine, found: Classified, *, signer: Signer) -> tuple[Subscriber | None, str]:
    """The subscriber the message is about and the clue that named them; the first clue present decides."""
    if found.verp_id is not None:
        return _by_id(engine, found.verp_id), f"VERP id {found.verp_id}"
    if found.token is not None:
        return _by_token(engine, found.token, signer), "signed token"
    if found.kind is Kind.UNSUBSCRIBE:
        return None, "no token in its address or subject"
    if found.message_id_id is not None:
        return _by_id(engine, found.message_id_id), f"Message-ID id {found.message_id_id}"
    for address in found.addresses or tuple(f.email for f in found.failures):
        match = subscribers.find(engine, address)
        if match is not None:
            return match, f"address {address}"
    named = ", ".join(found.addresses or tuple(f.email for f in found.failures)) or "no address"
    return None, f"named {named}"


def _by_id(engine: sa.Engine, subscriber_id: int) -> Subscriber | None:
    return subscribers.by_id(engine, subscriber_id) if 0 < subscriber_id <= MAX_ID else None


def _by_token(engine: sa.Engine, token: str, signer: Signer) -> Subscriber | None:
    """The subscriber a token was signed for; an authentic token past its age still names them (as the web pages do)."""
    try:
        claims = Signer.peek(token)
        found = _by_id(engine, claims.subscriber_id)
        if found is None:
            return None
        signer.verify(token, found.email, now=claims.issued.timestamp())
    except BadToken:
        return None
    return found


# what changes ---------------------------------------------------------------------------------


def _apply(conn: sa.Connection, found: Classified, subscriber: Subscriber | None, options: Options) -> str:
    """Record the message's effect within `conn`'s transaction; one line saying what it was."""
    if subscriber is None:
        return "no subscriber"
    when = _now()
    if found.kind is Kind.UNSUBSCRIBE:
        return _set(conn, subscriber, Status.UNSUBSCRIBED, "unsubscribed by email (List-Unsubscribe mailto)")
    if found.kind is Kind.COMPLAINT:
        bounces.keep(conn, kind=BounceKind.COMPLAINT, email=subscriber.email, when=when, key=found.key,
                     subscriber_id=subscriber.id, diagnostic=found.why, issue_date=found.issue_date)  # fmt: skip
        return _set(conn, subscriber, Status.COMPLAINED, f"complained: {found.why}")
    failure = _failure_of(found.failures, subscriber)
    kind = BounceKind.HARD if failure.hard else BounceKind.SOFT
    bounces.keep(conn, kind=kind, email=subscriber.email, when=when, key=found.key, subscriber_id=subscriber.id,
                 status=failure.status, diagnostic=failure.diagnostic, issue_date=found.issue_date)  # fmt: skip
    words = " ".join(part for part in (failure.status, failure.diagnostic) if part)
    if failure.hard:
        return _set(conn, subscriber, Status.BOUNCED, f"hard bounce: {words}")
    since = when - dt.timedelta(days=options.soft_bounce_days)
    days = bounces.soft_days(conn, subscriber.id, since=since)
    if days >= options.soft_bounce_limit:
        return _set(
            conn, subscriber, Status.BOUNCED, f"soft bounces on {days} days within {options.soft_bounce_days}: {words}"
        )
    return f"soft bounce {days} of {options.soft_bounce_limit} ({words})"


def _failure_of(failures: tuple[Failure, ...], subscriber: Subscriber) -> Failure:
    """The failure for the subscriber's own address if the bounce names it, else the worst one."""
    mine = [f for f in failures if f.email.lower() == subscriber.email.lower()]
    return min(mine or failures, key=lambda f: not f.hard)


def _set(conn: sa.Connection, subscriber: Subscriber, status: Status, reason: str) -> str:
    """Only an active subscriber changes: an unsubscribed, bounced or complained address is already not sent to."""
    if subscriber.status is not Status.ACTIVE:
        return f"already {subscriber.status}: {reason}"
    subscribers.update_status(conn, subscriber.id, status, reason=reason[:REASON_CHARS])
    return f"now {status}: {reason}"


# --watch --------------------------------------------------------------------------------------


def watch(
    open_mailbox: Callable[[], Mailbox],
    engine: sa.Engine,
    *,
    signer: Signer,
    options: Options = Options(),
    stop: threading.Event,
    poll_seconds: float = POLL_SECONDS,
    log: Callable[[str], None] = print,
) -> None:
    """Read the mailbox until `stop` is set: at once when IMAP IDLE says mail came, else every `poll_seconds`.

    The scheduler runs this in a thread; a lost connection is logged and opened again.
    """
    while not stop.is_set():
        try:
            with open_mailbox() as box:
                while not stop.is_set():
                    report = process(box, engine, signer=signer, options=options)
                    for line in [*report.changes, *report.problems, report.summary()] if report.messages else []:
                        log(line)
                    _wait(box, poll_seconds, stop)
        except MailboxError as exc:
            log(f"{exc}; trying again in {poll_seconds:.0f} s")
            stop.wait(poll_seconds)


def _wait(box: Mailbox, seconds: float, stop: threading.Event) -> None:
    """Until mail may have come, `seconds` have passed or `stop` is set; checking `stop` at least once a second."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        if box.wait(min(left, 1.0)):
            return
