"""Inbound mail: the bounce and unsubscribe mailbox, read, classified and applied to the subscriber store."""

from .bounces import BounceKind, bounce_counts
from .classify import Classified, Kind, classify
from .mailbox import PROCESSED, UNRECOGNISED, Mailbox, MailboxError, MaildirMailbox, MemoryMailbox, open_mailbox
from .process import Options, Report, process, watch

__all__ = [
    "PROCESSED", "UNRECOGNISED", "BounceKind", "Classified", "Kind", "Mailbox", "MailboxError", "MaildirMailbox",
    "MemoryMailbox", "Options", "Report", "bounce_counts", "classify", "open_mailbox", "process", "watch",
]  # fmt: skip
