"""The emails the scheduler sends the editor when a firing sends nothing: their texts, and the record of them.

Each template in templates/notices renders a subject line, a blank line, then the text. The
`notices` table (in the store beside the ledger) keeps one row per firing and kind of notice, so
that of two schedulers, or a retried firing, only the first tells the editor (`first_notice`).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

import jinja2
import sqlalchemy as sa

from ..ledger.tables import UTCDateTime, insert, now
from ..store import metadata
from ..templates import ROOT

TEMPLATES = ROOT / "notices"


@dataclass(frozen=True)
class Notice:
    """A plain-text email to the editor."""

    subject: str
    text: str


def compose(name: str, /, **context: Any) -> Notice:
    """The notice of templates/notices/`name`.txt.j2 filled with `context`."""
    rendered = _environment().get_template(f"{name}.txt.j2").render(**context)
    subject, _, text = rendered.partition("\n\n")
    return Notice(subject=subject.strip(), text=text.strip("\n").rstrip())


# The unique key lets one of two schedulers send a firing's notice.
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


def _day(date: dt.date) -> str:
    return f"{date:%A} {date.day} {date:%B %Y}"


def _clock(at: dt.datetime) -> str:
    return f"{at:%H:%M %Z}"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # plain-text email
    )
    env.filters.update(day=_day, clock=_clock)
    return env
