"""The one exception tree: the CLI turns each into a readable line and an exit code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?!\S)")


class NewsletterError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One finding about a content file, pointing at the file, line and field."""

    path: Path
    line: int | None
    field: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = display_path(self.path) + (f":{self.line}" if self.line else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def display_path(path: Path) -> str:
    """The path as an editor would type it: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class ContentError(NewsletterError, ValueError):
    """The content folder has errors; `problems` lists each with its file and line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigError(NewsletterError, ValueError):
    """A setting (environment variable, URL, key) is missing or wrong."""


class NotFound(NewsletterError, LookupError):
    """A named thing (issue date, subscriber, send) does not exist."""


class SubscriberError(NewsletterError, ValueError):
    """A subscriber operation was refused (bad address, unknown network...)."""


class DeliveryError(NewsletterError):
    """A message could not be handed to the mail server."""

    def __init__(self, message: str, *, code: int | None = None, reply: str = ""):
        self.code = code
        self.reply = reply
        super().__init__(message)

    @property
    def status(self) -> str:
        """The reply's enhanced status code (RFC 3463) such as "5.1.1", else its basic code such as "554" (or "")."""
        match = _ENHANCED.match(self.reply)
        return match[1] if match else str(self.code or "")


class TemporaryDeliveryError(DeliveryError, ConnectionError):
    """4xx reply or a dropped connection: try again later."""


class RelayUnavailable(TemporaryDeliveryError):
    """The relay cannot be reached, greets or logs us in with a 4xx, or stops answering: no recipient's attempt."""


class RelayRefused(TemporaryDeliveryError):
    """The relay refuses the send itself (our sender, relaying, authentication, policy: 5.7.x), never one recipient."""


class PermanentDeliveryError(DeliveryError):
    """5xx reply: this recipient will not take the message; never retry."""

    @property
    def hard_bounce(self) -> bool:
        """5.1.x: the mailbox does not exist (RFC 3463)."""
        return self.status.startswith("5.1.")


class SendPaused(NewsletterError):
    """The relay refused or stopped answering, or too many deliveries failed in a row: the send stopped and says why."""

    exit_code = 2


class BadToken(NewsletterError, ValueError):
    """An unsubscribe or preferences token that is malformed, tampered with or expired."""


class UnsafeHeaderValue(NewsletterError, ValueError):
    """A value bound for a mail header holds a line break or control character (header injection)."""

    def __init__(self, field: str, value: str, reason: str = "it holds a line break or control character"):
        self.field = field
        self.value = value
        super().__init__(f"{field} {value!r} cannot go into a mail header: {reason}")


class SendConflict(NewsletterError):
    """The issue's send already exists with other networks: an issue is sent once."""


class SendRefused(NewsletterError):
    """A send was refused before anything was recorded: it would go to nobody, or to the wrong issue's readers."""


class NoRecipients(SendRefused):
    """No active subscriber is in the networks of the issue: a send now would reach nobody, so none is started."""

    def __init__(self, issue_date: object, networks: frozenset[str]):
        self.issue_date = issue_date
        self.networks = networks
        super().__init__(
            f"the issue of {issue_date} would reach nobody: no active subscriber is in its networks"
            f" ({', '.join(sorted(networks))}); nothing was sent or recorded."
            " Import subscribers first (`newsletter subscribers import FILE`)"
        )
