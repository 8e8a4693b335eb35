"""The check before a firing: warn the editor in time when the issue it will send is missing, broken or for nobody.

A firing that finds its issue not ready tells the editor then, too late for that week. This check,
run by the scheduler from `ahead` (the evening) before each firing, tells them while there is time
to fix it: once per firing, however often it runs and however many schedulers run it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .. import delivery, ledger
from ..content import Newsletter
from ..errors import ContentError
from ..folder import load_folder, load_newsletter
from ..transports import Transport
from .firing import tell_editor_once
from .notices import Notice, compose
from .readiness import check_issues
from .timing import issue_date, next_firings

log = logging.getLogger(__name__)

KIND = "forewarning"  # the notices table's kind: one forewarning per firing


@dataclass(frozen=True)
class Forewarning:
    """The check of the issue of `date`, which the firing at `firing_at` sends: `problem` is None when it is ready."""

    firing_at: dt.datetime
    date: dt.date
    problem: str | None
    told: str | None = None  # the address the editor was warned at, if they were (now, not by an earlier check)


async def forewarn(
    root: Path | str,
    engine: sa.Engine,
    transport: Transport,
    *,
    now: dt.datetime,
    ahead: dt.timedelta,
    known: Newsletter,
) -> Forewarning | None:
    """Check the issue of the next firing if it is due within `ahead` of `now`; warn the editor once if it would not go.

    None when no firing is that close. `known` is the newsletter as the scheduler started with it,
    used when newsletter.yaml no longer loads (the firing will say so).
    """
    root = Path(root)
    try:
        newsletter, _ = load_newsletter(root)
    except ContentError:
        newsletter = known
    schedule = newsletter.schedule or known.schedule
    assert schedule is not None, "the scheduler starts only with a schedule"
    firings = next_firings(schedule, after=now, count=1)
    if not firings or firings[0] - now > ahead:
        return None
    at = firings[0]
    date = issue_date(at, schedule.zone)
    if ledger.get_send(engine, date) is not None:  # sent by hand already, or under way
        return Forewarning(at, date, None)
    found = _problem(root, engine, date, when=at)
    if found is None:
        return Forewarning(at, date, None)
    problem, notice = found
    told = await tell_editor_once(engine, newsletter, transport, notice, at=at, date=date, kind=KIND)
    log.warning("the issue of %s, due at %s, is not ready: %s", date, at.isoformat(), problem)
    return Forewarning(at, date, problem, told)


def _problem(root: Path, engine: sa.Engine, date: dt.date, *, when: dt.datetime) -> tuple[str, Notice] | None:
    """Why the issue of `date` would not go out at `when`, and the notice saying so; None if it would."""
    [ready] = check_issues(root, [date])
    if not ready.exists:
        return ready.describe(), compose("forewarn_no_issue", date=date, when=when, path=ready.path)
    if not ready.ok:
        problems = ready.problems + ready.elsewhere
        return ready.describe(), compose("forewarn_invalid", date=date, when=when, problems=problems)
    audience = delivery.audience(load_folder(root), engine, date=date)
    if not audience.count:
        networks = sorted(audience.networks)
        why = f"nobody active is in its networks ({', '.join(networks)})"
        return why, compose("forewarn_no_recipients", date=date, when=when, networks=networks)
    return None
