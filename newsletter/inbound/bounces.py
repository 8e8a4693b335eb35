"""Kept bounces and complaints, one row each, and the inbound messages already handled (so none is applied twice)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from ..store import metadata
from ..subscribers import subscriber_networks_table as N


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


bounces_table = sa.Table(
    "bounces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16)),  # enhanced status code (RFC 3463), e.g. 5.1.1
    sa.Column("diagnostic", sa.Text),  # the receiving server's words
    sa.Column("issue_date", sa.Date),  # the issue that bounced, when the original Message-ID says
    sa.Column("message_key", sa.String(400), nullable=False),  # the inbound message it came in
    sa.CheckConstraint("kind IN ('hard', 'soft', 'complaint')", name="kind"),
    sa.Index(None, "issue_date", "kind"),
    sa.Index(None, "subscriber_id", "received_at"),
    sa.Index(None, "received_at"),
)

handled_table = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("message_key", sa.String(400), primary_key=True),  # Message-ID, or sha256: of the bytes
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
)

B = bounces_table


@dataclass(frozen=True)
class Bounce:
    subscriber_id: int | None
    email: str
    received_at: dt.datetime
    kind: BounceKind
    status: str | None
    diagnostic: str | None
    issue_date: dt.date | None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite keeps no zone; we store UTC


def listing(engine: sa.Engine, *, since: dt.datetime | None = None) -> Iterator[Bounce]:
    """Every kept bounce and complaint (received since `since`), oldest first."""
    query = sa.select(
        B.c.subscriber_id, B.c.email, B.c.received_at, B.c.kind, B.c.status, B.c.diagnostic, B.c.issue_date
    )
    if since is not None:
        query = query.where(B.c.received_at >= since)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(B.c.received_at, B.c.id)).all()
    for row in rows:
        yield Bounce(
            row.subscriber_id,
            row.email,
            _aware(row.received_at),
            BounceKind(row.kind),
            row.status,
            row.diagnostic,
            row.issue_date,
        )


def bounce_counts(engine: sa.Engine, issue_date: dt.date) -> dict[str, dict[BounceKind, int]]:
    """For `newsletter status`: the issue's bounces and complaints by kind, per network of the subscriber and "all"."""
    empty = dict.fromkeys(BounceKind, 0)
    counts: dict[str, dict[BounceKind, int]] = {"all": dict(empty)}
    with engine.connect() as conn:
        for kind, count in conn.execute(
            sa.select(B.c.kind, sa.func.count()).where(B.c.issue_date == issue_date).group_by(B.c.kind)
        ):
            counts["all"][BounceKind(kind)] = count
        per_network = (
            sa.select(N.c.network, B.c.kind, sa.func.count())
            .join(N, N.c.subscriber_id == B.c.subscriber_id)
            .where(B.c.issue_date == issue_date)
            .group_by(N.c.network, B.c.kind)
        )
        for network, kind, count in conn.execute(per_network):
            counts.setdefault(network, dict(empty))[BounceKind(kind)] = count
    return counts


def soft_days(conn: sa.Connection, subscriber_id: int, *, since: dt.datetime) -> int:
    """On how many days since `since` the subscriber soft-bounced (Mailman counts at most one a day)."""
    query = sa.select(B.c.received_at).where(
        B.c.subscriber_id == subscriber_id, B.c.kind == BounceKind.SOFT.value, B.c.received_at >= since
    )
    return len({_aware(when).date() for when in conn.execute(query).scalars()})


def already_handled(conn: sa.Connection, key: str) -> bool:
    return (
        conn.execute(sa.select(handled_table.c.message_key).where(handled_table.c.message_key == key)).first()
        is not None
    )


def mark_handled(conn: sa.Connection, key: str, *, kind: str, outcome: str, when: dt.datetime) -> None:
    conn.execute(handled_table.insert().values(message_key=key, kind=kind, handled_at=when, outcome=outcome))


def keep(conn: sa.Connection, *, kind: BounceKind, email: str, when: dt.datetime, key: str, subscriber_id: int | None,
         status: str | None = None, diagnostic: str | None = None, issue_date: dt.date | None = None) -> None:  # fmt: skip
    conn.execute(
        B.insert().values(
            subscriber_id=subscriber_id, email=email, received_at=when, kind=kind.value, status=status,
            diagnostic=diagnostic, issue_date=issue_date, message_key=key,
        )
    )  # fmt: skip
