"""The delivery ledger: one send per issue and one row per recipient, so a send runs once and survives crashes.

A recipient's row moves queued -> sending (claimed, with a lease) -> sent | deferred | failed, or
to suppressed when the subscriber unsubscribed or left the issue's networks before it was their
turn. By concern: `tables` (the rows and their states), `sends`, `claims` (claim, record, renew,
release, requeue, next due), `quota` (the hourly quota every sender shares) and `report` (the status of a
send). The scheduler keeps its own record of the notices it sent the editor (scheduler/notices.py).
"""

from .claims import Claim, Outcome, claim, next_due, record, release, release_dead, renew, requeue
from .quota import HOURLY_LOCK_KEY, hourly_room_at
from .report import Failure, SendStatus, Tally, status, tally
from .sends import (
    Send,
    active_sends,
    create_send,
    discard_untried,
    finish,
    get_send,
    latest_send,
    pause,
    recipient_count,
    requeue_failed,
    resume,
    send_by_id,
    sent_issues,
)
from .tables import (
    DONE,
    OPEN,
    SEPARATOR,
    State,
    UTCDateTime,
    deliveries_table,
    network_key,
    now,
    sends_table,
    split_key,
    worker_id,
)

__all__ = [
    "DONE",
    "HOURLY_LOCK_KEY",
    "OPEN",
    "SEPARATOR",
    "Claim",
    "Failure",
    "Outcome",
    "Send",
    "SendStatus",
    "State",
    "Tally",
    "UTCDateTime",
    "active_sends",
    "claim",
    "create_send",
    "deliveries_table",
    "discard_untried",
    "finish",
    "get_send",
    "hourly_room_at",
    "latest_send",
    "network_key",
    "next_due",
    "now",
    "pause",
    "recipient_count",
    "record",
    "release",
    "release_dead",
    "renew",
    "requeue",
    "requeue_failed",
    "resume",
    "send_by_id",
    "sends_table",
    "sent_issues",
    "split_key",
    "status",
    "tally",
    "worker_id",
]
