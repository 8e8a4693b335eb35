"""Claims: a sender takes due recipients under a lease, records what happened, and gives back what it did not send.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several sender processes share a send;
SQLite serialises writers, so there a claim is simply one atomic UPDATE.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..subscribers import S, Status, networks_of
from .quota import used_this_hour
from .sends import Send
from .tables import OPEN, State, UTCDateTime, deliveries_table, network_key, now

D = deliveries_table


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
    with engine.begin() as conn:
        if per_hour is not None:
            limit = min(limit, per_hour - used_this_hour(conn, when, lease))
        if limit <= 0:
            return [], 0
        taken = _take(conn, send.id, worker=worker, limit=limit, when=when, lease=lease)
        if not taken:
            return [], 0
        claims, suppressed = _read_recipients(conn, send, taken)
        _write_back(conn, claims, suppressed)
    return claims, len(suppressed)


def _due(when: dt.datetime, lease: dt.timedelta) -> sa.ColumnElement[bool]:
    """Rows a claim may take at `when`: queued, deferred past their retry time, or held under a lapsed lease."""
    waiting = D.c.state.in_((State.QUEUED.value, State.DEFERRED.value))
    retry_time = sa.or_(D.c.next_attempt_at.is_(None), D.c.next_attempt_at <= when)
    lapsed = sa.and_(D.c.state == State.SENDING.value, D.c.claimed_at < when - lease)
    return sa.or_(sa.and_(waiting, retry_time), lapsed)


def _take(
    conn: sa.Connection, send_id: int, *, worker: str, limit: int, when: dt.datetime, lease: dt.timedelta
) -> list[sa.Row]:
    """Mark up to `limit` due rows of the send as sending by `worker`: their (id, subscriber_id, attempts)."""
    # SKIP LOCKED: concurrent claimants on PostgreSQL pass over each other's rows instead of waiting.
    chosen = (
        sa.select(D.c.id)
        .where(D.c.send_id == send_id, _due(when, lease))
        .order_by(D.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(
        conn.execute(
            D.update()
            .where(D.c.id.in_(chosen.scalar_subquery()))
            .values(state=State.SENDING.value, claimed_by=worker, claimed_at=when)
            .returning(D.c.id, D.c.subscriber_id, D.c.attempts)
        ).all()
    )


def _read_recipients(conn: sa.Connection, send: Send, taken: list[sa.Row]) -> tuple[list[Claim], list[dict[str, Any]]]:
    """The taken rows as the subscribers are now: claims to send, and the rows to suppress (as update parameters)."""
    ids = [row.subscriber_id for row in taken]
    people = {r.id: r for r in conn.execute(sa.select(S.c.id, S.c.email, S.c.name, S.c.status).where(S.c.id.in_(ids)))}
    memberships = networks_of(conn, ids)
    claims: list[Claim] = []
    suppressed: list[dict[str, Any]] = []
    for row in sorted(taken, key=lambda r: r.id):
        person = people.get(row.subscriber_id)
        networks = memberships[row.subscriber_id] & send.networks
        why = _why_not(person, networks)
        if why is None and person is not None:
            claims.append(Claim(row.id, row.subscriber_id, person.email, person.name, networks, row.attempts))
        else:
            suppressed.append({"b_id": row.id, "b_reply": f"not sent: {why}", "b_variant": network_key(networks)})
    return claims, suppressed


def _why_not(person: sa.Row | None, networks: frozenset[str]) -> str | None:
    """Why this subscriber is no longer to get the send (None: they are)."""
    if person is None:
        return "removed"
    if person.status != Status.ACTIVE.value:
        return str(person.status)
    if not networks:
        return "left the networks"
    return None


_CLAIMED = (
    D.update()
    .where(D.c.id == sa.bindparam("b_id"))
    .values(email=sa.bindparam("b_email"), variant=sa.bindparam("b_variant"))
)


def _write_back(conn: sa.Connection, claims: list[Claim], suppressed: list[dict[str, Any]]) -> None:
    """Store the suppressions, and each claim's current address and variant."""
    if suppressed:
        conn.execute(
            D.update()
            .where(D.c.id == sa.bindparam("b_id"))
            .values(
                state=State.SUPPRESSED.value, last_reply=sa.bindparam("b_reply"), variant=sa.bindparam("b_variant")
            ),
            suppressed,
        )
    if claims:
        conn.execute(
            _CLAIMED,
            [{"b_id": c.delivery_id, "b_email": c.email, "b_variant": network_key(c.networks)} for c in claims],
        )


# Built once: constructing the statement cost more than executing it, and record() runs for every few messages.
_RECORD = (
    D.update()
    .where(D.c.id == sa.bindparam("b_id"), D.c.claimed_by == sa.bindparam("b_worker"), D.c.state == State.SENDING.value)
    .values(
        state=sa.bindparam("b_state"),
        attempts=sa.bindparam("b_attempts"),
        last_reply=sa.bindparam("b_reply"),
        message_id=sa.bindparam("b_message_id"),
        next_attempt_at=sa.bindparam("b_next", type_=UTCDateTime),
        sent_at=sa.bindparam("b_sent_at", type_=UTCDateTime),
    )
)


def record(engine: sa.Engine, outcomes: list[Outcome], *, worker: str) -> None:
    """Write what happened to claimed rows in one transaction (rows another process took over are left alone)."""
    if not outcomes:
        return
    when = now()
    with engine.begin() as conn:
        conn.execute(
            _RECORD,
            [
                {
                    "b_id": o.delivery_id,
                    "b_worker": worker,
                    "b_state": o.state.value,
                    "b_attempts": o.attempts,
                    "b_reply": o.reply[:2000],
                    "b_message_id": o.message_id,
                    "b_next": o.next_attempt_at,
                    "b_sent_at": when if o.state == State.SENT else None,
                }
                for o in outcomes
            ],
        )


def requeue(engine: sa.Engine, delivery_ids: list[int], *, worker: str) -> int:
    """Queue again the rows this process recorded failed whose refusal turned out to be the relay's; how many."""
    if not delivery_ids:
        return 0
    with engine.begin() as conn:
        return conn.execute(
            D.update()
            .where(D.c.id.in_(delivery_ids), D.c.claimed_by == worker, D.c.state == State.FAILED.value)
            .values(state=State.QUEUED.value, attempts=0, next_attempt_at=None, claimed_by=None, claimed_at=None)
        ).rowcount


def renew(engine: sa.Engine, *, worker: str) -> None:
    """Extend the lease on every row this process holds."""
    with engine.begin() as conn:
        conn.execute(
            D.update().where(D.c.claimed_by == worker, D.c.state == State.SENDING.value).values(claimed_at=now())
        )


def release(engine: sa.Engine, *, worker: str) -> int:
    """Give back the rows this process claimed but did not send (on stop or pause)."""
    with engine.begin() as conn:
        return _unclaim(conn, D.c.claimed_by == worker)


def release_dead(engine: sa.Engine, send_id: int) -> int:
    """Free rows claimed by processes of this host that no longer exist (killed), without waiting for their lease."""
    host = socket.gethostname()
    with engine.connect() as conn:
        owners = (
            conn.execute(
                sa.select(D.c.claimed_by).where(D.c.send_id == send_id, D.c.state == State.SENDING.value).distinct()
            )
            .scalars()
            .all()
        )
    dead = [o for o in owners if o and o.startswith(host + ":") and not _alive(o.split(":")[1])]
    if not dead:
        return 0
    with engine.begin() as conn:
        return _unclaim(conn, sa.and_(D.c.send_id == send_id, D.c.claimed_by.in_(dead)))


def _unclaim(conn: sa.Connection, where: sa.ColumnElement[bool]) -> int:
    back = sa.case((D.c.attempts > 0, State.DEFERRED.value), else_=State.QUEUED.value)
    return conn.execute(
        D.update().where(where, D.c.state == State.SENDING.value).values(state=back, claimed_by=None, claimed_at=None)
    ).rowcount


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
