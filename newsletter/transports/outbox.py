"""A transport that writes each message as an .eml file: the default when no SMTP relay is configured."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from ..errors import TemporaryDeliveryError
from ..message import Outgoing
from .base import BaseTransport

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class OutboxTransport(BaseTransport):
    """Writes <folder>/<message id>.eml atomically (temporary file, then rename): a crash never leaves half a file."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def path_for(self, message: Outgoing) -> Path:
        return self.folder / (_UNSAFE.sub("_", message.message_id).lstrip(".") + ".eml")

    async def send(self, message: Outgoing) -> str:
        return await asyncio.to_thread(self._write, message)  # file I/O off the event loop

    def _write(self, message: Outgoing) -> str:
        target = self.path_for(message)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".writing-", suffix=".tmp")
        except OSError as exc:
            raise TemporaryDeliveryError(f"cannot write to the outbox {self.folder}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(message.data)
            Path(temporary).replace(target)
        except BaseException as exc:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise TemporaryDeliveryError(f"cannot write {target}: {exc.strerror}") from exc
            raise
        return f"250 written to {target}"
