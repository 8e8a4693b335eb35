"""A transport that keeps messages in a list: for --dry-run and tests."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DeliveryError
from ..message import Outgoing
from .base import BaseTransport


class MemoryTransport(BaseTransport):
    """Keeps every message in `.sent`; `fail(address)` may return an error to raise for that address instead."""

    def __init__(self, *, fail: Callable[[str], DeliveryError | None] | None = None) -> None:
        self.sent: list[Outgoing] = []
        self.fail = fail
        self.closed = False

    async def send(self, message: Outgoing) -> str:
        if self.fail is not None and (error := self.fail(message.to)) is not None:
            raise error
        self.sent.append(message)
        return f"250 kept in memory as {message.message_id}"

    async def close(self) -> None:
        self.closed = True
