"""When the schedule fires: its cron trigger, the wall clock of its zone, and the date of the issue each firing sends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from ..content import Schedule


def cron_trigger(schedule: Schedule) -> CronTrigger:
    """APScheduler's trigger for newsletter.yaml's `schedule`, in its time zone."""
    return CronTrigger.from_crontab(schedule.cron, timezone=schedule.zone)


def local(at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """`at` on the zone's wall clock with its true offset (a cron time inside the spring gap moves past it)."""
    return at.astimezone(dt.UTC).astimezone(zone)


def repeated_hour(at: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether `at` falls in the second pass of the autumn's repeated hour, a wall time cron already fired at."""
    wall = local(at, zone)
    return wall.fold == 1 and wall.replace(fold=0).utcoffset() != wall.utcoffset()


def next_firings(schedule: Schedule, *, after: dt.datetime, count: int = 5) -> list[dt.datetime]:
    """The next `count` firing times strictly after `after`, on the schedule's wall clock with their offsets."""
    if after.tzinfo is None:
        raise ValueError("`after` must carry a time zone")
    trigger = cron_trigger(schedule)
    firings: list[dt.datetime] = []
    previous = None
    now = after + dt.timedelta(microseconds=1)
    while len(firings) < count:
        at = trigger.get_next_fire_time(previous, now)
        if at is None:
            break
        previous = now = at
        if at > after and not repeated_hour(at, schedule.zone):
            firings.append(local(at, schedule.zone))
    return firings


def issue_date(at: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The date of the issue a firing at `at` sends: that day in the schedule's time zone."""
    return local(at, zone).date()
