"""Notices to the editor about a firing: one per firing and outcome, however many schedulers run."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from .tables import insert, notices_table, now


def first_notice(engine: sa.Engine, *, firing_at: dt.datetime, kind: str, issue_date: dt.date) -> bool:
    """Record a notice to the editor about this firing; False if one was already recorded (by another scheduler)."""
    with engine.begin() as conn:
        inserted = conn.execute(
            insert(conn, notices_table)
            .values(firing_at=firing_at, kind=kind, issue_date=issue_date, told_at=now())
            .on_conflict_do_nothing(index_elements=["firing_at", "kind"])
            .returning(notices_table.c.id)
        ).scalar_one_or_none()
    return inserted is not None
