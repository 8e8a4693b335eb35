"""The weekly send: when newsletter.yaml's schedule fires, and what one firing does.

A firing checks the issue dated that day in the schedule's time zone: a valid one is sent as
`newsletter send` would; a missing or invalid one is not, and the editor is told. APScheduler
keeps the job in the subscribers' database, so a firing missed while no scheduler ran is caught
up on restart within a grace period; the delivery ledger's one send per issue date makes a
second firing (a second scheduler, the autumn's repeated hour) a no-op instead of a second send.

timing: when it fires · readiness: whether its issue is ready · firing: what one firing does ·
forewarn: the check the evening before · notices: what the editor is told · runner: the APScheduler process.
"""

from ..content import Schedule
from ..errors import ConfigError
from .firing import FiringResult, Outcome, already_sent, editor_address, fire, missed, tell_editor, tell_editor_once
from .forewarn import Forewarning, forewarn
from .notices import Notice, compose, first_notice, notices_table
from .readiness import IssueCheck, check_issues
from .runner import (
    DEFAULT_GRACE,
    DEFAULT_WARN,
    JOB_ID,
    JOBS_TABLE,
    FiringExecutor,
    Runner,
    run,
    start_scheduler,
    weekly_issue_job,
)
from .timing import cron_trigger, issue_date, local, next_firings, repeated_hour

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_WARN",
    "JOBS_TABLE",
    "JOB_ID",
    "ConfigError",
    "FiringExecutor",
    "FiringResult",
    "Forewarning",
    "IssueCheck",
    "Notice",
    "Outcome",
    "Runner",
    "Schedule",
    "already_sent",
    "check_issues",
    "compose",
    "cron_trigger",
    "editor_address",
    "fire",
    "first_notice",
    "forewarn",
    "issue_date",
    "local",
    "missed",
    "next_firings",
    "notices_table",
    "repeated_hour",
    "run",
    "start_scheduler",
    "tell_editor",
    "tell_editor_once",
    "weekly_issue_job",
]
