"""What a send has done so far: rows by state, in total and per network, and each failure with its reply."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..errors import NotFound
from ..subscribers import N
from .sends import Send, get_send
from .tables import DONE, OPEN, State, deliveries_table, split_key

D = deliveries_table


@dataclass
class Tally:
    """Rows of a send by state."""

    counts: Counter[str] = field(default_factory=Counter)

    def __getitem__(self, state: State | str) -> int:
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
    requeued: Tally = field(default_factory=Tally)  # rows `send --retry-failed` queued again, by their state now
    requeued_at: dt.datetime | None = None  # when it last did


def status(engine: sa.Engine, issue_date: dt.date) -> SendStatus:
    send = get_send(engine, issue_date)
    if send is None:
        raise NotFound(f"the issue of {issue_date} has not been sent")
    with engine.connect() as conn:
        total, per_network = _counts(conn, send)
        failed = conn.execute(
            sa.select(D.c.email, D.c.variant, D.c.attempts, D.c.last_reply)
            .where(D.c.send_id == send.id, D.c.state == State.FAILED.value)
            .order_by(D.c.id)
        ).all()
        requeued = conn.execute(
            sa.select(D.c.state, sa.func.count(), sa.func.max(D.c.requeued_at))
            .where(D.c.send_id == send.id, D.c.requeued_at.is_not(None))
            .group_by(D.c.state)
        ).all()
    failures = [Failure(r.email, split_key(r.variant), r.attempts, r.last_reply or "") for r in failed]
    last = max((when for *_, when in requeued), default=None)
    return SendStatus(send, total, per_network, failures, Tally(Counter({s: n for s, n, _ in requeued})), last)


def _counts(conn: sa.Connection, send: Send) -> tuple[Tally, dict[str, Tally]]:
    """The send's rows by state: in total, and per network (a reader of two networks counts in both)."""
    per_network: dict[str, Tally] = {n: Tally() for n in sorted(send.networks)}
    total = Tally()
    rows = conn.execute(
        sa.select(D.c.variant, D.c.state, sa.func.count())
        .where(D.c.send_id == send.id)
        .group_by(D.c.variant, D.c.state)
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
    return total, per_network
