"""The delivery ledger: one send per issue and one row per recipient, so a send runs once and survives crashes.

A recipient's row moves queued -> sending (claimed, with a lease) -> sent | deferred | failed, or
to suppressed when the subscriber unsubscribed or left the issue's networks before it was their
turn. Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several sender processes share a send;
SQLite serialises writers, so there a claim is simply one atomic UPDATE. The ledger also keeps
the hourly sending quota (shared by every sender) and the scheduler's notices to the editor.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .errors import NotFound, SendConflict
from .store import metadata
from .subscribers import Status, subscriber_networks_table, subscribers_table

S = subscribers_table
N = subscriber_networks_table
SEPARATOR = ";"


class State(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


OPEN = (State.QUEUED.value, State.SENDING.value, State.DEFERRED.value)
DONE = (State.SENT.value, State.FAILED.value, State.SUPPRESSED.value)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC and read back zone-aware on SQLite too (which keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=dt.UTC)


sends_table = sa.Table(
    "sends",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("issue_date", sa.Date, nullable=False, unique=True),  # an issue is sent once
    sa.Column("networks", sa.Text, nullable=False),  # ids joined by SEPARATOR, sorted
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("paused_reason", sa.Text),
)

# No foreign key to subscribers: removing a subscriber must not erase what was sent to them.
deliveries_table = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("send_id", sa.Integer, sa.ForeignKey("sends.id", ondelete="CASCADE"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("variant", sa.Text),  # the networks this reader's copy was made for, set when claimed
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("last_reply", sa.Text),
    sa.Column("message_id", sa.String(400)),
    sa.Column("sent_at", UTCDateTime),
    sa.UniqueConstraint("send_id", "subscriber_id"),
    sa.CheckConstraint(
        "state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')", name="state"
    ),
    sa.Index(None, "send_id", "state", "id"),
    sa.Index(None, "state", "sent_at"),  # the hourly rate limit's count
)

# A row per notice to the editor about a firing: the unique key lets one of two schedulers send it.
notices_table = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("firing_at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # the firing's outcome: no issue, invalid, failed, missed
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("told_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("firing_at", "kind"),
)

T = sends_table
D = deliveries_table
HOURLY_LOCK_KEY = 0x6E65_7768  # any constant: the same in every sender sharing a PostgreSQL store


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def network_key(networks: Iterable[str]) -> str:
    return SEPARATOR.join(sorted(set(networks)))


def split_key(key: str | None) -> frozenset[str]:
    return frozenset(key.split(SEPARATOR)) if key else frozenset()


def worker_id() -> str:
    """Names this process in claims: host and pid let a later run on the same host spot a dead claimant."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(frozen=True)
class Send:
    id: int
    issue_date: dt.date
    networks: frozenset[str]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    paused_reason: str | None


@dataclass(frozen=True)
class Claim:
    """A recipient this process now holds, as the subscriber is at claim time."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    networks: frozenset[str]  # the subscriber's networks within the send's
    attempts: int  # made so far


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed recipient; `state` is sent, deferred or failed."""

    delivery_id: int
    state: State
    attempts: int
    reply: str
    message_id: str | None = None
    next_attempt_at: dt.datetime | None = None


@dataclass
class Tally:
    """Rows of a send by state."""

    counts: Counter = field(default_factory=Counter)

    def __getitem__(self, state: State) -> int:
        return self.counts[State(state).value]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts[s] for s in DONE)

    @property
    def open(self) -> int:
        return sum(self.counts[s] for s in OPEN)


def _send(row: sa.Row) -> Send:
    return Send(row.id, row.issue_date, split_key(row.networks), row.started_at, row.finished_at, row.paused_reason)


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# sends --------------------------------------------------------------------------------------


def get_send(engine: sa.Engine, issue_date: dt.date) -> Send | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(T).where(T.c.issue_date == issue_date)).one_or_none()
    return row and _send(row)


def latest_send(engine: sa.Engine) -> Send | None:
    """The send of the newest issue sent (or being sent)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(T).order_by(T.c.issue_date.desc()).limit(1)).one_or_none()
    return row and _send(row)


def send_by_id(engine: sa.Engine, send_id: int) -> Send:
    with engine.connect() as conn:
        row = conn.execute(sa.select(T).where(T.c.id == send_id)).one_or_none()
    if row is None:
        raise NotFound(f"no send with id {send_id}")
    return _send(row)


def create_send(engine: sa.Engine, issue_date: dt.date, networks: Iterable[str]) -> tuple[Send, bool]:
    """The send of this issue, created with a row per active recipient if there is none yet: (send, created).

    Creation is one transaction, so a crash leaves either no send or a complete one, and the
    unique issue date makes two concurrent callers (two schedulers) agree on a single send.
    """
    key = network_key(networks)
    with engine.begin() as conn:
        inserted = conn.execute(
            _insert(conn, T)
            .values(issue_date=issue_date, networks=key, started_at=now())
            .on_conflict_do_nothing(index_elements=["issue_date"])
            .returning(T.c.id)
        ).scalar_one_or_none()
        if inserted is not None:
            member = sa.exists().where(N.c.subscriber_id == S.c.id, N.c.network.in_(sorted(split_key(key))))
            chosen = sa.select(
                sa.literal(inserted), S.c.id, S.c.email, sa.literal(State.QUEUED.value)
            ).where(S.c.status == Status.ACTIVE.value, member)
            conn.execute(D.insert().from_select(["send_id", "subscriber_id", "email", "state"], chosen))
        row = conn.execute(sa.select(T).where(T.c.issue_date == issue_date)).one()
    send = _send(row)
    if inserted is None and send.networks != split_key(key):
        raise SendConflict(
            f"the issue of {issue_date} is already being sent to {', '.join(sorted(send.networks))};"
            f" it cannot also go to {', '.join(sorted(split_key(key)))} (run the send again with the networks it started with)"
        )
    return send, inserted is not None


def sent_issues(engine: sa.Engine) -> dict[dt.date, dt.datetime]:
    """Issue dates that have a send (running or finished), with when it started: what the archive lists."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(T.c.issue_date, T.c.started_at)).all())


def first_notice(engine: sa.Engine, *, firing_at: dt.datetime, kind: str, issue_date: dt.date) -> bool:
    """Record a notice to the editor about this firing; False if one was already recorded (by another scheduler)."""
    with engine.begin() as conn:
        inserted = conn.execute(
            _insert(conn, notices_table)
            .values(firing_at=firing_at, kind=kind, issue_date=issue_date, told_at=now())
            .on_conflict_do_nothing(index_elements=["firing_at", "kind"])
            .returning(notices_table.c.id)
        ).scalar_one_or_none()
    return inserted is not None


def active_sends(engine: sa.Engine) -> list[Send]:
    """Sends not finished and not paused, oldest issue first: what a worker may help with."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(T).where(T.c.finished_at.is_(None), T.c.paused_reason.is_(None)).order_by(T.c.issue_date)
        ).all()
    return [_send(r) for r in rows]


def pause(engine: sa.Engine, send_id: int, reason: str) -> None:
    with engine.begin() as conn:
        conn.execute(T.update().where(T.c.id == send_id).values(paused_reason=reason))


def resume(engine: sa.Engine, send_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(T.update().where(T.c.id == send_id).values(paused_reason=None))


def finish(engine: sa.Engine, send_id: int) -> bool:
    """Mark the send finished if no row is left open; whether it is finished."""
    open_rows = sa.exists().where(D.c.send_id == send_id, D.c.state.in_(OPEN))
    with engine.begin() as conn:
        conn.execute(T.update().where(T.c.id == send_id, T.c.finished_at.is_(None), ~open_rows).values(finished_at=now()))
        return conn.execute(sa.select(T.c.finished_at).where(T.c.id == send_id)).scalar_one() is not None


# claims -------------------------------------------------------------------------------------


def claim(
    engine: sa.Engine, send: Send, *, worker: str, limit: int, lease: dt.timedelta, per_hour: int | None = None
) -> tuple[list[Claim], int]:
    """Take up to `limit` recipients that are due: (claims to send, how many were suppressed).

    Due means queued, deferred past its retry time, or claimed by someone whose lease ran out.
    Each subscriber is read now, so an unsubscribe or a change of networks made while the send
    runs is honoured: such rows become suppressed or get the variant of their current networks.
    With `per_hour`, the claim also keeps every sender of this store within that many messages in
    any hour (sent or in flight), across processes, machines and restarts.
    """
    when = now()
    due = sa.or_(
        sa.and_(D.c.state.in_((State.QUEUED.value, State.DEFERRED.value)),
                sa.or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= when)),
        sa.and_(D.c.state == State.SENDING.value, D.c.claimed_at < when - lease),
    )  # fmt: skip
    # SKIP LOCKED: concurrent claimants on PostgreSQL pass over each other's rows instead of waiting.
    chosen = (
        sa.select(D.c.id).where(D.c.send_id == send.id, due).order_by(D.c.id).limit(limit).with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        if per_hour is not None:
            limit = min(limit, per_hour - _used_this_hour(conn, when, lease))
            if limit <= 0:
                return [], 0
            chosen = chosen.limit(limit)
        taken = conn.execute(
            D.update()
            .where(D.c.id.in_(chosen.scalar_subquery()))
            .values(state=State.SENDING.value, claimed_by=worker, claimed_at=when)
            .returning(D.c.id, D.c.subscriber_id, D.c.attempts)
        ).all()
        if not taken:
            return [], 0
        ids = [row.subscriber_id for row in taken]
        people = {r.id: r for r in conn.execute(sa.select(S.c.id, S.c.email, S.c.name, S.c.status).where(S.c.id.in_(ids)))}
        memberships: dict[int, set[str]] = {}
        for sid, network in conn.execute(sa.select(N.c.subscriber_id, N.c.network).where(N.c.subscriber_id.in_(ids))):
            memberships.setdefault(sid, set()).add(network)
        claims, suppressed = [], []
        for row in sorted(taken, key=lambda r: r.id):
            person = people.get(row.subscriber_id)
            networks = frozenset(memberships.get(row.subscriber_id, ())) & send.networks
            if person is None or person.status != Status.ACTIVE.value or not networks:
                why = "removed" if person is None else (person.status if person.status != Status.ACTIVE.value else "left the networks")
                suppressed.append(dict(b_id=row.id, b_reply=f"not sent: {why}", b_variant=network_key(networks)))
            else:
                claims.append(Claim(row.id, row.subscriber_id, person.email, person.name, networks, row.attempts))
        if suppressed:
            conn.execute(
                D.update().where(D.c.id == sa.bindparam("b_id"))
                .values(state=State.SUPPRESSED.value, last_reply=sa.bindparam("b_reply"), variant=sa.bindparam("b_variant")),
                suppressed,
            )  # fmt: skip
        if claims:
            conn.execute(
                D.update().where(D.c.id == sa.bindparam("b_id"))
                .values(email=sa.bindparam("b_email"), variant=sa.bindparam("b_variant")),
                [dict(b_id=c.delivery_id, b_email=c.email, b_variant=network_key(c.networks)) for c in claims],
            )  # fmt: skip
    return claims, len(suppressed)


def record(engine: sa.Engine, outcomes: list[Outcome], *, worker: str) -> None:
    """Write what happened to claimed rows in one transaction (rows another process took over are left alone)."""
    if not outcomes:
        return
    when = now()
    with engine.begin() as conn:
        conn.execute(
            D.update()
            .where(D.c.id == sa.bindparam("b_id"), D.c.claimed_by == worker, D.c.state == State.SENDING.value)
            .values(
                state=sa.bindparam("b_state"),
                attempts=sa.bindparam("b_attempts"),
                last_reply=sa.bindparam("b_reply"),
                message_id=sa.bindparam("b_message_id"),
                next_attempt_at=sa.bindparam("b_next", type_=UTCDateTime),
                sent_at=sa.bindparam("b_sent_at", type_=UTCDateTime),
            ),
            [
                dict(
                    b_id=o.delivery_id,
                    b_state=o.state.value,
                    b_attempts=o.attempts,
                    b_reply=o.reply[:2000],
                    b_message_id=o.message_id,
                    b_next=o.next_attempt_at,
                    b_sent_at=when if o.state == State.SENT else None,
                )
                for o in outcomes
            ],
        )


def renew(engine: sa.Engine, *, worker: str) -> None:
    """Extend the lease on every row this process holds."""
    with engine.begin() as conn:
        conn.execute(D.update().where(D.c.claimed_by == worker, D.c.state == State.SENDING.value).values(claimed_at=now()))


def _unclaim(conn: sa.Connection, where: sa.ColumnElement[bool]) -> int:
    back = sa.case((D.c.attempts > 0, State.DEFERRED.value), else_=State.QUEUED.value)
    return conn.execute(
        D.update().where(where, D.c.state == State.SENDING.value).values(state=back, claimed_by=None, claimed_at=None)
    ).rowcount


def _used_this_hour(conn: sa.Connection, when: dt.datetime, lease: dt.timedelta) -> int:
    """Messages sent in the hour before `when` plus those in flight, in every send: what a relay's hourly quota counts."""
    # Claimants count one at a time, or two could each see room for the same last messages.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(HOURLY_LOCK_KEY)))
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return conn.execute(sa.select(sa.func.count()).where(_this_hour(when, lease))).scalar_one()


def _this_hour(when: dt.datetime, lease: dt.timedelta) -> sa.ColumnElement[bool]:
    """Rows that count against the hourly quota at `when`: sent within the hour, or claimed and not yet lapsed."""
    in_flight = sa.and_(D.c.state == State.SENDING.value, D.c.claimed_at >= when - lease)
    return sa.or_(_sent_this_hour(when), in_flight)


def _sent_this_hour(when: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(D.c.state == State.SENT.value, D.c.sent_at > when - dt.timedelta(hours=1))


def hourly_room_at(engine: sa.Engine, *, per_hour: int, lease: dt.timedelta) -> dt.datetime:
    """When the hourly quota next has room for one more message: now, or when enough sent ones leave the hour."""
    when = now()
    with engine.connect() as conn:
        used = conn.execute(sa.select(sa.func.count()).where(_this_hour(when, lease))).scalar_one()
        if used < per_hour:
            return when
        leaving = conn.execute(
            sa.select(D.c.sent_at).where(_sent_this_hour(when)).order_by(D.c.sent_at).offset(used - per_hour).limit(1)
        ).scalar_one_or_none()
    if leaving is None:  # the excess is in flight: once recorded, those messages hold the hour instead
        return when + dt.timedelta(seconds=1)
    return leaving + dt.timedelta(hours=1)


def release(engine: sa.Engine, *, worker: str) -> int:
    """Give back the rows this process claimed but did not send (on stop or pause)."""
    with engine.begin() as conn:
        return _unclaim(conn, D.c.claimed_by == worker)


def release_dead(engine: sa.Engine, send_id: int) -> int:
    """Free rows claimed by processes of this host that no longer exist (killed), without waiting for their lease."""
    host = socket.gethostname()
    with engine.connect() as conn:
        owners = conn.execute(
            sa.select(D.c.claimed_by).where(D.c.send_id == send_id, D.c.state == State.SENDING.value).distinct()
        ).scalars().all()
    dead = [o for o in owners if o and o.startswith(host + ":") and not _alive(o.split(":")[1])]
    if not dead:
        return 0
    with engine.begin() as conn:
        return _unclaim(conn, sa.and_(D.c.send_id == send_id, D.c.claimed_by.in_(dead)))


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def next_due(engine: sa.Engine, send_id: int, *, lease: dt.timedelta) -> dt.datetime | None:
    """When the next open row becomes claimable (None: no open rows)."""
    with engine.connect() as conn:
        retry, claimed, queued = conn.execute(
            sa.select(
                sa.func.min(sa.case((D.c.state == State.DEFERRED.value, D.c.next_attempt_at))),
                sa.func.min(sa.case((D.c.state == State.SENDING.value, D.c.claimed_at))),
                sa.func.count().filter(D.c.state == State.QUEUED.value),
            ).where(D.c.send_id == send_id, D.c.state.in_(OPEN))
        ).one()
    if queued:
        return now()
    candidates = [t for t in (retry, claimed and claimed + lease) if t is not None]
    return min(candidates) if candidates else None


# reading ------------------------------------------------------------------------------------


def tally(engine: sa.Engine, send_id: int) -> Tally:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(D.c.state, sa.func.count()).where(D.c.send_id == send_id).group_by(D.c.state))
        return Tally(Counter(dict(rows.all())))


@dataclass(frozen=True)
class Failure:
    email: str
    networks: frozenset[str]
    attempts: int
    reply: str


@dataclass(frozen=True)
class SendStatus:
    """A send as `newsletter status` shows it: totals, per network, and each failure with its reply."""

    send: Send
    total: Tally
    networks: dict[str, Tally]  # a reader of two networks counts in both
    failures: list[Failure]


def status(engine: sa.Engine, issue_date: dt.date) -> SendStatus:
    send = get_send(engine, issue_date)
    if send is None:
        raise NotFound(f"the issue of {issue_date} has not been sent")
    per_network: dict[str, Tally] = {n: Tally() for n in sorted(send.networks)}
    total = Tally()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(D.c.variant, D.c.state, sa.func.count()).where(D.c.send_id == send.id).group_by(D.c.variant, D.c.state)
        ).all()
        failed = conn.execute(
            sa.select(D.c.email, D.c.variant, D.c.attempts, D.c.last_reply)
            .where(D.c.send_id == send.id, D.c.state == State.FAILED.value)
            .order_by(D.c.id)
        ).all()
        # Rows not claimed yet have no variant: count them under the subscriber's networks as they are now.
        waiting = conn.execute(
            sa.select(N.c.network, D.c.state, sa.func.count())
            .join(N, N.c.subscriber_id == D.c.subscriber_id)
            .where(D.c.send_id == send.id, D.c.variant.is_(None), N.c.network.in_(sorted(send.networks)))
            .group_by(N.c.network, D.c.state)
        ).all()
    for variant, state, count in rows:
        total.counts[state] += count
        for network in split_key(variant):
            per_network.setdefault(network, Tally()).counts[state] += count
    for network, state, count in waiting:
        per_network[network].counts[state] += count
    failures = [Failure(r.email, split_key(r.variant), r.attempts, r.last_reply or "") for r in failed]
    return SendStatus(send, total, per_network, failures)
