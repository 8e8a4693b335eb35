"""Settings from the environment (NEWSLETTER_*), each declared once with its type, range and help.

Only the shells (CLI, web, scheduler) read them. `newsletter settings` prints them from this declaration,
and the README's list is checked against it.
"""

from __future__ import annotations

import shlex
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonDict
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "NEWSLETTER_"
MASK = "***"
SECRET: JsonDict = {"secret": True}  # json_schema_extra of a setting whose value is never printed
MAKE_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the subscribers and the ledger (unset: SQLite newsletter.db beside newsletter.yaml)",
    )
    secret_key: str | None = Field(
        None,
        min_length=32,  # a short key is guessed from one token in a moment
        description="signs the tokens in unsubscribe links; the same for sending and serving, required with SMTP"
        f" and serve; make one with {MAKE_KEY}",
        json_schema_extra=SECRET,
    )
    smtp_url: str | None = Field(
        None, description="the relay: smtp://user:pass@host:587 (STARTTLS) or smtps://host:465 (unset: the outbox)"
    )
    smtp_verify: bool = Field(True, description="verify the relay's TLS certificate")
    smtp_pool: int = Field(4, ge=1, description="SMTP connections each sender keeps open")
    smtp_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="how long each SMTP step (connect, greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT) waits",
    )
    rate_per_second: float | None = Field(
        None, gt=0, description="messages per second each sender process sends at most"
    )
    rate_per_hour: int | None = Field(
        None,
        ge=1,
        description="messages per hour across every sender and restart (kept by the ledger), e.g. a relay's quota",
    )
    outbox_dir: Path | None = Field(
        None, description="where .eml files go without a relay (unset: outbox/ beside newsletter.yaml)"
    )
    dkim_key_file: Path | None = Field(
        None, description="PEM private key that DKIM-signs each message (unset: not signed)"
    )
    dkim_ed25519_key_file: Path | None = Field(
        None,
        description="Ed25519 key (RFC 8463) signing beside the RSA one; its DNS name: <selector>-ed25519._domainkey.<domain>",
    )
    dkim_selector: str | None = Field(
        None, description="DKIM selector: the public key is at <selector>._domainkey.<domain>"
    )
    dkim_domain: str | None = Field(None, description="DKIM signing domain (unset: the sender's domain)")
    bounce_address: str | None = Field(
        None,
        description="VERP envelope sender, e.g. bounces@example.org: bounces come back to bounces+<id>@example.org",
    )
    retry_base_seconds: float = Field(
        2.0, gt=0, description="first wait before retrying a 4xx or dropped connection; doubles each time"
    )
    max_attempts: int = Field(6, ge=1, description="attempts per recipient before a 4xx-refused address fails")
    pause_after_errors: int = Field(50, ge=1, description="delivery errors in a row before a send pauses")
    relay_fault_after: int = Field(
        5,
        ge=2,
        le=1000,
        description="different recipients refused with the same status code, or failed connections, in a row"
        " that pause a send as the relay's fault (the recipients stay queued)",
    )
    lease_seconds: float = Field(
        60.0, ge=5, description="a sender's claim not renewed for this long is taken over by another"
    )
    schedule_grace_seconds: int = Field(
        6 * 3600, ge=1, description="how late a missed firing still sends once the scheduler is back"
    )
    schedule_warn_hours: int = Field(
        18,
        ge=0,
        le=144,
        description="hours before each firing that its issue is checked and the editor warned if not ready (0: off)",
    )
    smtputf8: bool = Field(
        False, description="the relay accepts non-ASCII local parts (RFC 6531); the outbox always does"
    )
    inbound_url: str | None = Field(
        None,
        description="the mailbox `newsletter inbound` reads: imaps://user:pass@host/INBOX, imap:// (STARTTLS), maildir:///path",
    )
    unsubscribe_address: str | None = Field(
        None,
        description="e.g. unsubscribe@news.example.org: List-Unsubscribe's mailto, unsubscribe+<token>@…, read by `newsletter inbound`",
    )
    soft_bounce_limit: int = Field(
        3, ge=1, le=100, description="soft bounces, each on a different day, that mark an address bounced"
    )
    soft_bounce_days: int = Field(
        7, ge=1, le=365, description="the window in days within which soft_bounce_limit soft bounces count"
    )
    link_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="how long `check --links` and the desk wait for each link before calling it broken",
    )

    def database_for(self, root: Path) -> str:
        return self.database_url or f"sqlite:///{(Path(root) / 'newsletter.db').resolve()}"

    def outbox_for(self, root: Path) -> Path:
        return self.outbox_dir or Path(root) / "outbox"

    def source(self, name: str) -> str:
        """Where the value in force of setting `name` came from: "environment" or "default"."""
        return "environment" if name in self.model_fields_set else "default"


def variable(name: str) -> str:
    """The environment variable of setting `name`."""
    return PREFIX + name.upper()


def expects(name: str) -> str:
    """What setting `name` takes, from its declared type and range, e.g. "a number greater than 0"."""
    field = Settings.model_fields[name]
    bounds = [_BOUNDS[type(m)](m) for m in field.metadata if type(m) in _BOUNDS]
    return " ".join([_KINDS.get(_kind(field), "text"), *bounds])


def shown(name: str, value: Any) -> str:
    """`value` of setting `name` as it may be printed: secrets masked, a URL's password too, unset as "unset"."""
    if value is None:
        return "unset"
    if (Settings.model_fields[name].json_schema_extra or {}) == SECRET:
        return MASK
    if isinstance(value, bool):
        return str(value).lower()
    return _without_password(str(value))


def explain(error: pydantic.ValidationError) -> str:
    """One line naming each bad variable and what it expects, e.g. "NEWSLETTER_RATE_PER_SECOND=0: must be greater than 0"."""
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0])
        value = problem.get("input")
        given = shlex.quote(shown(name, value)) if isinstance(value, str) else shown(name, value)
        wanted = f"must be {expects(name)}" if problem["type"] in _EXPECTATIONS else problem["msg"]
        hint = f": make one with {MAKE_KEY}" if name == "secret_key" else ""
        lines.append(f"{variable(name)}={given}: {wanted}{hint}")
    return "; ".join(lines)


def _kind(field: FieldInfo) -> type:
    """The declared type without its `| None`."""
    annotation = field.annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return typing.cast(type, annotation)


def _without_password(text: str) -> str:
    """`text` with a URL's password masked: all from the user name to the last @, whatever it holds (#, /, ?)."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not (sep and at and ":" in userinfo):
        return text
    return f"{scheme}://{userinfo.partition(':')[0]}:{MASK}@{host}"


_KINDS: dict[type, str] = {
    int: "a whole number",
    float: "a number",
    bool: "true or false (also 1/0, yes/no, on/off)",
    Path: "a path",
    str: "text",
}
_BOUNDS: dict[type, typing.Callable[[Any], str]] = {
    annotated_types.Gt: lambda m: f"greater than {m.gt}",
    annotated_types.Ge: lambda m: f"at least {m.ge}",
    annotated_types.Lt: lambda m: f"less than {m.lt}",
    annotated_types.Le: lambda m: f"at most {m.le}",
    annotated_types.MinLen: lambda m: f"of at least {m.min_length} characters",
}
_EXPECTATIONS = frozenset(
    {
        "int_parsing",
        "int_from_float",
        "int_type",
        "float_parsing",
        "float_type",
        "finite_number",
        "bool_parsing",
        "bool_type",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "path_type",
        "string_too_short",
    }
)
