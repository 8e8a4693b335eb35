"""What the commands build from the settings to send: the signing key, the send configuration, the transport, the store.

`newsletter send`, `newsletter worker`, `newsletter schedule run` and `newsletter serve` all build
them here, so that a scheduled send is made exactly as one from the command line.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from ..content import Newsletter
from ..delivery import DeliveryOptions, SendConfig
from ..dkim import DKIMKey
from ..errors import ConfigError, display_path
from ..scheduler.firing import UNSIGNED_WARNING
from ..settings import Settings
from ..store import open_store
from ..tokens import Signer
from ..transports import OutboxTransport, SMTPTransport, open_transport
from ..transports.smtp import Relay

DEV_KEY_FILE = ".secret_key"


def secret_key(config: Settings, root: Path, *, smtp: bool) -> str:
    """NEWSLETTER_SECRET_KEY; without it, for the outbox only, a development key kept beside newsletter.yaml."""
    if config.secret_key:
        return config.secret_key
    if smtp:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY is not set: it signs the unsubscribe links, so mail cannot go out without it"
        )
    path = Path(root) / DEV_KEY_FILE
    if not path.exists():
        _write_dev_key(path)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{display_path(path)} is empty: delete it to get a new development key")
    return key


def _write_dev_key(path: Path) -> None:
    # Written whole under another name, then linked into place: a concurrent run never reads half a key.
    draft = path.with_name(f"{DEV_KEY_FILE}.{os.getpid()}.tmp")
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)
        print(
            f"note: no NEWSLETTER_SECRET_KEY set: generated a development key in {display_path(path)}", file=sys.stderr
        )
    except FileExistsError:
        pass  # another run made it first: use theirs
    finally:
        draft.unlink()


def signer(config: Settings, root: Path, *, dry_run: bool = False) -> Signer:
    """The token signer of the links in the emails; a dry run, which sends nothing, needs no kept key."""
    if dry_run:
        return Signer(config.secret_key or secrets.token_hex(16))
    return Signer(secret_key(config, root, smtp=bool(config.smtp_url)))


def dkim_key(config: Settings, newsletter: Newsletter) -> DKIMKey | None:
    """The DKIM key, refused (one line) when its domain does not align with the From domain, as DMARC would."""
    if not config.dkim_key_file:
        if config.dkim_ed25519_key_file:
            raise ConfigError(
                "NEWSLETTER_DKIM_ED25519_KEY_FILE is set but NEWSLETTER_DKIM_KEY_FILE is not: Ed25519 signs beside RSA"
            )
        return None
    if not config.dkim_selector:
        raise ConfigError("NEWSLETTER_DKIM_KEY_FILE is set but NEWSLETTER_DKIM_SELECTOR is not")
    sender = newsletter.sender.email.rpartition("@")[2]
    domain = config.dkim_domain or sender
    if not aligned(domain, sender):
        raise ConfigError(
            f"NEWSLETTER_DKIM_DOMAIN {domain} does not align with the From domain {sender}:"
            " DMARC would fail every message; sign as the sender's domain or one under the same organisational domain"
        )
    return DKIMKey.load(config.dkim_key_file, config.dkim_selector, domain, ed25519=config.dkim_ed25519_key_file)


def organisational_domain(domain: str) -> str:
    """The last two labels: a simple rule for DMARC's relaxed alignment (news.example.org and example.org align)."""
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def aligned(domain: str, other: str) -> bool:
    return organisational_domain(domain) == organisational_domain(other)


def delivery_options(config: Settings) -> DeliveryOptions:
    return DeliveryOptions(
        concurrency=config.smtp_pool,
        retry_base=config.retry_base_seconds,
        max_attempts=config.max_attempts,
        pause_after_errors=config.pause_after_errors,
        relay_fault_after=config.relay_fault_after,
        lease=config.lease_seconds,
        per_hour=config.rate_per_hour,
    )


def send_config(config: Settings, root: Path, newsletter: Newsletter, *, dry_run: bool = False) -> SendConfig:
    """How the newsletter in `root` sends: its signer, the delivery options, the DKIM key and the bounce address."""
    if config.unsubscribe_address and not config.inbound_url:
        raise ConfigError(
            "NEWSLETTER_UNSUBSCRIBE_ADDRESS is set but NEWSLETTER_INBOUND_URL is not: nothing would read its mail"
        )
    if config.smtp_url:
        Relay.parse(config.smtp_url)  # a bad URL is the one line, before any warning
    sign = signer(config, root, dry_run=dry_run)
    dkim = dkim_key(config, newsletter)
    if dkim is None and config.smtp_url and not dry_run:
        print(f"warning: {UNSIGNED_WARNING}", file=sys.stderr)
    return SendConfig(
        sign,
        options=delivery_options(config),
        dkim=dkim,
        bounce_address=config.bounce_address,
        unsubscribe_address=config.unsubscribe_address,
    )


def transport(config: Settings, root: Path) -> SMTPTransport | OutboxTransport:
    """The relay at NEWSLETTER_SMTP_URL, else the outbox folder; to be used as `async with`."""
    return open_transport(
        config.smtp_url,
        outbox=config.outbox_for(root),
        pool_size=config.smtp_pool,
        verify=config.smtp_verify,
        rate_per_second=config.rate_per_second,
        timeout=config.smtp_timeout_seconds,
    )


def where(config: Settings, root: Path) -> str:
    """Where `transport` sends, for the summary line."""
    return "over SMTP" if config.smtp_url else f"to the outbox folder {display_path(config.outbox_for(root))}"


@contextmanager
def store(config: Settings, root: Path) -> Iterator[sa.Engine]:
    """The subscriber store and ledger of the newsletter in `root`, disposed of on the way out."""
    engine = open_store(config.database_for(root))
    try:
        yield engine
    finally:
        engine.dispose()
