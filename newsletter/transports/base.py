"""The seam between the send engine and where messages go: a small Protocol, and the base its implementations share."""

from __future__ import annotations

from typing import Protocol, Self

from ..message import Outgoing


class Transport(Protocol):
    """Where messages go (smtp.py, outbox.py, memory.py): `async with transport:` opens it and closes it after."""

    async def send(self, message: Outgoing) -> str:
        """Hand over one message; the receiver's reply. Raises DeliveryError (temporary or permanent)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class BaseTransport:
    """An async context manager around `close()`, so that no caller has to remember it."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Let go of what the transport holds (connections, files); nothing by default."""
