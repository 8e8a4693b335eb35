"""Where messages go: an SMTP relay (smtp.py), .eml files in a folder (outbox.py), or memory (memory.py).

Each is a Transport (base.py) used as `async with transport:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import BaseTransport, Transport
from .memory import MemoryTransport
from .outbox import OutboxTransport
from .smtp import SMTPTransport

__all__ = ["BaseTransport", "MemoryTransport", "OutboxTransport", "SMTPTransport", "Transport", "open_transport"]


def open_transport(smtp_url: str | None, *, outbox: Path, **smtp_options: Any) -> SMTPTransport | OutboxTransport:
    """The SMTP relay at `smtp_url` when one is set, else the outbox folder: a fresh machine needs no mail server."""
    if smtp_url:
        return SMTPTransport(smtp_url, **smtp_options)
    return OutboxTransport(outbox)
