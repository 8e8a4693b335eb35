"""Sending an issue to every recipient through the ledger: resumable, retried, shared by several processes.

config.py: how a send behaves (DeliveryOptions, SendConfig); variants.py: one Composer per set of
networks; run.py: one process's claim/send/record loop; api.py: what the shells call.
"""

from __future__ import annotations

from .api import (
    Audience,
    Log,
    Rehearsal,
    SendSummary,
    audience,
    due_date,
    in_days,
    rehearse,
    send_issue,
    send_test,
    work,
)
from .config import DeliveryOptions, SendConfig
from .run import Progress, describe
from .variants import Variants, issue_networks

__all__ = [
    "Audience",
    "DeliveryOptions",
    "Log",
    "Progress",
    "Rehearsal",
    "SendConfig",
    "SendSummary",
    "Variants",
    "audience",
    "describe",
    "due_date",
    "in_days",
    "issue_networks",
    "rehearse",
    "send_issue",
    "send_test",
    "work",
]
