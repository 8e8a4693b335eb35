"""Sends: one per issue, created with a row per recipient, paused, resumed and finished."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import NoRecipients, NotFound, SendConflict
from ..subscribers import N, S, Status
from .tables import OPEN, State, deliveries_table, insert, network_key, now, sends_table, split_key

T = sends_table
D = deliveries_table


@dataclass(frozen=True)
class Send:
    id: int
    issue_date: dt.date
    networks: frozenset[str]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    paused_reason: str | None


def _send(row: sa.Row) -> Send:
    return Send(row.id, row.issue_date, split_key(row.networks), row.started_at, row.finished_at, row.paused_reason)


def get_send(engine: sa.Engine, issue_date: dt.date) -> Send | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(T).where(T.c.issue_date == issue_date)).one_or_none()
    return _send(row) if row else None


def latest_send(engine: sa.Engine) -> Send | None:
    """The send of the newest issue sent (or being sent)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(T).order_by(T.c.issue_date.desc()).limit(1)).one_or_none()
    return _send(row) if row else None


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
    A send that would reach nobody raises NoRecipients and is not recorded, so a send after an
    import reaches everyone; a send recorded for nobody (by an older version) is replaced.
    """
    key = network_key(networks)
    with engine.begin() as conn:
        conn.execute(T.delete().where(T.c.issue_date == issue_date, ~sa.exists().where(D.c.send_id == T.c.id)))
        inserted = conn.execute(
            insert(conn, T)
            .values(issue_date=issue_date, networks=key, started_at=now())
            .on_conflict_do_nothing(index_elements=["issue_date"])
            .returning(T.c.id)
        ).scalar_one_or_none()
        if inserted is not None and not _queue_recipients(conn, inserted, split_key(key)):
            raise NoRecipients(issue_date, split_key(key))  # the transaction rolls back: nothing is recorded
        row = conn.execute(sa.select(T).where(T.c.issue_date == issue_date)).one()
    send = _send(row)
    if inserted is None and send.networks != split_key(key):
        raise SendConflict(
            f"the issue of {issue_date} is already being sent to {', '.join(sorted(send.networks))};"
            f" it cannot also go to {', '.join(sorted(split_key(key)))} (run the send again with the networks it started with)"
        )
    return send, inserted is not None


def _recipient(networks: Iterable[str]) -> sa.ColumnElement[bool]:
    """An active subscriber of any of `networks`: whom a send of them queues."""
    member = sa.exists().where(N.c.subscriber_id == S.c.id, N.c.network.in_(sorted(networks)))
    return sa.and_(S.c.status == Status.ACTIVE.value, member)


def _queue_recipients(conn: sa.Connection, send_id: int, networks: frozenset[str]) -> int:
    """A queued row for every active subscriber of any of `networks`; how many."""
    chosen = sa.select(sa.literal(send_id), S.c.id, S.c.email, sa.literal(State.QUEUED.value)).where(
        _recipient(networks)
    )
    conn.execute(D.insert().from_select(["send_id", "subscriber_id", "email", "state"], chosen))
    return conn.execute(sa.select(sa.func.count()).where(D.c.send_id == send_id)).scalar_one()  # no rowcount on PG


def recipient_count(engine: sa.Engine, networks: Iterable[str]) -> int:
    """How many recipients a send to `networks` would queue now."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(S).where(_recipient(networks))).scalar_one()


def discard_untried(engine: sa.Engine, send_id: int) -> bool:
    """Delete a send nothing was tried for yet (no attempt, nothing in flight), as if never started; whether it was."""
    tried = sa.exists().where(
        D.c.send_id == send_id, sa.or_(D.c.attempts > 0, D.c.state.in_((State.SENT.value, State.SENDING.value)))
    )
    with engine.begin() as conn:
        conn.execute(D.delete().where(D.c.send_id == send_id, ~tried))
        empty = ~sa.exists().where(D.c.send_id == send_id)
        return conn.execute(T.delete().where(T.c.id == send_id, empty).returning(T.c.id)).first() is not None


def sent_issues(engine: sa.Engine) -> dict[dt.date, dt.datetime]:
    """Issue dates whose send reached someone, or is under way with nothing tried yet, with when it started.

    What the archive lists: a send whose every try so far failed, or that paused before reaching
    anyone (a relay that cannot be reached, or refuses the send), publishes nothing.
    """
    reached = sa.exists().where(D.c.send_id == T.c.id, D.c.state == State.SENT.value)
    untried = sa.and_(~sa.exists().where(D.c.send_id == T.c.id, D.c.attempts > 0), T.c.paused_reason.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(T.c.issue_date, T.c.started_at).where(sa.or_(reached, untried)))
        return {row.issue_date: row.started_at for row in rows}


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


def requeue_failed(engine: sa.Engine, send_id: int) -> int:
    """Queue the send's failed recipients again and reopen it; how many. Readers no longer active stay as they are."""
    still_active = sa.exists().where(S.c.id == D.c.subscriber_id, S.c.status == Status.ACTIVE.value)
    with engine.begin() as conn:
        count = conn.execute(
            D.update()
            .where(D.c.send_id == send_id, D.c.state == State.FAILED.value, still_active)
            .values(
                state=State.QUEUED.value,
                attempts=0,
                next_attempt_at=None,
                claimed_by=None,
                claimed_at=None,
                requeued_at=now(),
            )
        ).rowcount
        if count:
            conn.execute(T.update().where(T.c.id == send_id).values(finished_at=None))
    return count


def finish(engine: sa.Engine, send_id: int) -> bool:
    """Mark the send finished if no row is left open; whether it is finished."""
    open_rows = sa.exists().where(D.c.send_id == send_id, D.c.state.in_(OPEN))
    with engine.begin() as conn:
        conn.execute(
            T.update().where(T.c.id == send_id, T.c.finished_at.is_(None), ~open_rows).values(finished_at=now())
        )
        return conn.execute(sa.select(T.c.finished_at).where(T.c.id == send_id)).scalar_one() is not None
