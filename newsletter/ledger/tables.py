"""The ledger's tables (sends, deliveries), the states a delivery moves through, and small shared helpers."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..store import metadata

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


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and read back zone-aware on SQLite too (which keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
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
    sa.Column("requeued_at", UTCDateTime),  # when `newsletter send --retry-failed` last queued the failed row again
    sa.UniqueConstraint("send_id", "subscriber_id"),
    sa.CheckConstraint("state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')", name="state"),
    sa.Index(None, "send_id", "state", "id"),
    sa.Index(None, "state", "sent_at"),  # the hourly rate limit's count
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def network_key(networks: Iterable[str]) -> str:
    """Networks as stored in a row: sorted, joined by SEPARATOR."""
    return SEPARATOR.join(sorted(set(networks)))


def split_key(key: str | None) -> frozenset[str]:
    return frozenset(key.split(SEPARATOR)) if key else frozenset()


def worker_id() -> str:
    """Names this process in claims: host and pid let a later run on the same host spot a dead claimant."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def insert(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the connection's dialect, for its `on_conflict_do_nothing`."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
