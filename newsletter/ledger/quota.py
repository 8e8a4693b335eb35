"""The hourly sending quota, shared by every sender of a store: messages sent in the last hour plus those in flight."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from .tables import State, deliveries_table, now

D = deliveries_table
HOURLY_LOCK_KEY = 0x6E65_7768  # any constant: the same in every sender sharing a PostgreSQL store


def used_this_hour(conn: sa.Connection, when: dt.datetime, lease: dt.timedelta) -> int:
    """Messages sent in the hour before `when` plus those in flight, in every send: what a relay's hourly quota counts.

    Takes the quota's lock for the rest of the transaction, so the caller can claim what is left.
    """
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
