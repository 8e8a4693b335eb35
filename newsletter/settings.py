"""Settings from the environment (NEWSLETTER_*). Only the shells (CLI, web, scheduler) read them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_", extra="ignore")

    database_url: str | None = None  # default: SQLite file newsletter.db beside newsletter.yaml
    secret_key: str | None = None
    smtp_url: str | None = None  # smtp://user:pass@host:587 (STARTTLS) or smtps://host:465; unset: outbox
    smtp_verify: bool = True  # verify the server's TLS certificate
    smtp_pool: int = 4  # connections kept open
    rate_per_second: float | None = None
    rate_per_hour: int | None = Field(None, ge=1)  # kept by the ledger, so shared by every sender and restart
    outbox_dir: Path | None = None  # default: outbox/ beside newsletter.yaml
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None  # default: the sender's domain
    bounce_address: str | None = None  # e.g. bounces@example.org: envelope sender becomes bounces+<id>@...
    retry_base_seconds: float = 2.0
    max_attempts: int = 6
    pause_after_errors: int = 50  # consecutive errors before a send pauses
    lease_seconds: float = Field(60.0, ge=5)  # a claim not renewed for this long is taken over by another sender
    schedule_grace_seconds: int = 6 * 3600
    smtputf8: bool = False  # the SMTP relay accepts non-ASCII local parts (RFC 6531); the outbox always does
    inbound_url: str | None = Field(
        None, description="the mailbox `newsletter inbound` reads: imaps://user:pass@host/INBOX, imap:// (STARTTLS), maildir:///path"
    )
    unsubscribe_address: str | None = Field(
        None, description="e.g. unsubscribe@news.example.org: List-Unsubscribe's mailto, unsubscribe+<token>@…, read by `newsletter inbound`"
    )
    soft_bounce_limit: int = Field(3, ge=1, le=100, description="soft bounces, each on a different day, that mark an address bounced")
    soft_bounce_days: int = Field(7, ge=1, le=365, description="the window in days within which soft_bounce_limit soft bounces count")

    def database_for(self, root: Path) -> str:
        return self.database_url or f"sqlite:///{(Path(root) / 'newsletter.db').resolve()}"

    def outbox_for(self, root: Path) -> Path:
        return self.outbox_dir or Path(root) / "outbox"
