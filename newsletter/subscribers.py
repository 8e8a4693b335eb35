"""Subscribers: one row per address, its networks, and whether it may be sent to (its status).

Addresses are kept as written (domain normalised) beside a lower-cased key that is unique, so
"Jo@Example.org" and "jo@example.org" are one person on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from .errors import NotFound, SubscriberError
from .store import metadata

PAGE = 1000  # rows per keyset page when streaming
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class Status(StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    organisation: str | None
    networks: frozenset[str]
    status: Status
    status_changed_at: dt.datetime
    status_reason: str | None


subscribers_table = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.Text),
    sa.Column("organisation", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status_reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'unsubscribed', 'bounced', 'complained')", name="status"),
    sa.Index(None, "status", "id"),
)

subscriber_networks_table = sa.Table(
    "subscriber_networks",
    metadata,
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("network", sa.String(64), primary_key=True),
    sa.Index(None, "network", "subscriber_id"),
)

S = subscribers_table
N = subscriber_networks_table


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# checking input ------------------------------------------------------------------------------


def normalize_address(email: str, *, smtputf8: bool = False) -> tuple[str, str]:
    """(address as written with its domain normalised, case-insensitive key), or SubscriberError saying why not."""
    if CONTROL.search(email):
        raise SubscriberError(f"email address {email!r} contains a control character")
    email = email.strip()
    if not email:
        raise SubscriberError("no email address")
    try:
        valid = validate_email(email, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid email address {email!r}: {exc}") from None
    if valid.smtputf8 and not smtputf8:
        raise SubscriberError(
            f"email address {email!r} has non-ASCII characters before the @, which needs SMTPUTF8, "
            "and the mail relay is not set up for it (NEWSLETTER_SMTPUTF8)"
        )
    return valid.normalized, valid.normalized.lower()


def check_networks(networks: Iterable[str], *, known_networks: Iterable[str]) -> frozenset[str]:
    """The networks as a set, or SubscriberError if one is not defined in newsletter.yaml or there are none."""
    chosen = frozenset(n.strip() for n in networks if n.strip())
    known = frozenset(known_networks)
    for network in sorted(chosen - known):
        close = difflib.get_close_matches(network, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SubscriberError(f"unknown network {network!r}{hint}")
    if not chosen:
        raise SubscriberError("no network given: a subscriber belongs to at least one")
    return chosen


MAX_TEXT = 200  # a name or organisation; the To: header and the greeting must carry it


def check_text(value: str | None, *, what: str) -> str | None:
    """A name or organisation: one line of at most MAX_TEXT characters, trimmed; empty means none."""
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        raise SubscriberError(f"{what} is {len(value):,} characters long: at most {MAX_TEXT} fit in a message")
    if CONTROL.search(value):
        raise SubscriberError(f"{what} {value!r} contains a control character (a line break?)")
    return value.strip() or None


# reading -------------------------------------------------------------------------------------


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite keeps no zone; we store UTC


def _subscriber(row: sa.Row, networks: Iterable[str]) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        name=row.name,
        organisation=row.organisation,
        networks=frozenset(networks),
        status=Status(row.status),
        status_changed_at=_aware(row.status_changed_at),
        status_reason=row.status_reason,
    )


def networks_of(
    conn: sa.Connection, subscriber_ids: Iterable[int], *, window: tuple[int, int] | None = None
) -> dict[int, frozenset[str]]:
    """The networks of each of these subscribers (empty for one that has none or is not there), in one query.

    With `window` (low, high), memberships are selected by the id range low < id <= high instead of by
    a list of ids: what a page of `_stream` wants, which covers such a range.
    """
    found: dict[int, set[str]] = {sid: set() for sid in subscriber_ids}
    if found:
        members: sa.ColumnElement[bool]
        if window is None:
            members = N.c.subscriber_id.in_(list(found))
        else:
            members = sa.and_(N.c.subscriber_id > window[0], N.c.subscriber_id <= window[1])
        for sid, network in conn.execute(sa.select(N.c.subscriber_id, N.c.network).where(members)):
            if sid in found:
                found[sid].add(network)
    return {sid: frozenset(networks) for sid, networks in found.items()}


def _with_networks(
    conn: sa.Connection, rows: Sequence[sa.Row], *, window: tuple[int, int] | None = None
) -> list[Subscriber]:
    """Subscribers from `rows`, each with its networks."""
    found = networks_of(conn, [row.id for row in rows], window=window)
    return [_subscriber(row, found[row.id]) for row in rows]


_COLUMNS = (S.c.id, S.c.email, S.c.name, S.c.organisation, S.c.status, S.c.status_changed_at, S.c.status_reason)


def _stream(
    engine: sa.Engine, *, status: Status | None = None, networks: frozenset[str] | None = None
) -> Iterator[Subscriber]:
    """Subscribers (of `status`, in any of `networks`), by id, a window of PAGE ids at a time.

    Keyset windows rather than one server-side cursor: no connection or snapshot is held while
    the caller works (a send can take hours), and memory stays at one page. Each window is a
    range of primary keys read with its memberships and filtered here, so no query ever scans
    past its window whatever plan the database picks.
    """
    last = 0
    while True:
        with engine.connect() as conn:
            window = sa.select(S.c.id).where(S.c.id > last).order_by(S.c.id).limit(PAGE).subquery()
            upper, size = conn.execute(sa.select(sa.func.max(window.c.id), sa.func.count()).select_from(window)).one()
            if upper is None:
                return
            query = sa.select(*_COLUMNS).where(S.c.id > last, S.c.id <= upper).order_by(S.c.id)
            if status is not None:
                query = query.where(S.c.status == status.value)
            page = _with_networks(conn, conn.execute(query).all(), window=(last, upper))
        yield from (s for s in page if networks is None or not networks.isdisjoint(s.networks))
        if size < PAGE:
            return
        last = upper


def recipients(engine: sa.Engine, networks: Iterable[str]) -> Iterator[Subscriber]:
    """Each active subscriber of any of `networks` once, by id, with all of its networks."""
    networks = frozenset(networks)
    return _stream(engine, status=Status.ACTIVE, networks=networks) if networks else iter(())


def listing(engine: sa.Engine, *, network: str | None = None, status: Status | None = None) -> Iterator[Subscriber]:
    """Every subscriber (optionally of one network and/or one status), by id, streamed."""
    return _stream(
        engine, status=Status(status) if status else None, networks=frozenset([network]) if network else None
    )


def _one(engine: sa.Engine, condition: sa.ColumnElement[bool]) -> Subscriber | None:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_COLUMNS).where(condition)).all()
        found = _with_networks(conn, rows)
    return found[0] if found else None


def find(engine: sa.Engine, email: str) -> Subscriber | None:
    """The subscriber with this address, ignoring case (None for an address that is not even valid)."""
    try:
        _, key = normalize_address(email, smtputf8=True)
    except SubscriberError:
        return None
    return _one(engine, S.c.email_key == key)


def by_id(engine: sa.Engine, subscriber_id: int) -> Subscriber | None:
    return _one(engine, S.c.id == subscriber_id)


def network_counts(engine: sa.Engine) -> dict[str, dict[Status, int]]:
    """For every network that has members in the store (known to newsletter.yaml or not): members by status."""
    counts: dict[str, dict[Status, int]] = {}
    query = (
        sa.select(N.c.network, S.c.status, sa.func.count())
        .join(S, S.c.id == N.c.subscriber_id)
        .group_by(N.c.network, S.c.status)
    )
    with engine.connect() as conn:
        for network, status, count in conn.execute(query):
            counts.setdefault(network, dict.fromkeys(Status, 0))[Status(status)] = count
    return counts


# writing -------------------------------------------------------------------------------------


def add(
    engine: sa.Engine,
    email: str,
    *,
    networks: Iterable[str],
    known_networks: Iterable[str],
    name: str | None = None,
    organisation: str | None = None,
    smtputf8: bool = False,
) -> Subscriber:
    """Add a new, active subscriber; SubscriberError if the address is invalid, already there, or a network unknown."""
    address, key = normalize_address(email, smtputf8=smtputf8)
    chosen = check_networks(networks, known_networks=known_networks)
    name = check_text(name, what="name")
    organisation = check_text(organisation, what="organisation")
    existing = find(engine, address)
    if existing is not None:
        raise SubscriberError(f"{existing.email} is already a subscriber ({existing.status})")
    when = now()
    try:
        with engine.begin() as conn:
            sid = conn.execute(
                S.insert().returning(S.c.id),
                dict(
                    email=address,
                    email_key=key,
                    name=name,
                    organisation=organisation,
                    status=Status.ACTIVE.value,
                    status_changed_at=when,
                    status_reason="added",
                    created_at=when,
                ),
            ).scalar_one()
            conn.execute(N.insert(), [dict(subscriber_id=sid, network=n) for n in sorted(chosen)])
    except sa.exc.IntegrityError:
        raise SubscriberError(f"{address} is already a subscriber") from None
    return Subscriber(sid, address, name, organisation, chosen, Status.ACTIVE, when, "added")


def _require(conn: sa.Connection, subscriber_id: int) -> sa.Row:
    row = conn.execute(sa.select(S.c.id, S.c.status).where(S.c.id == subscriber_id)).one_or_none()
    if row is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return row


def set_status(engine: sa.Engine, subscriber_id: int, status: Status, *, reason: str) -> None:
    """Change the status, recording when and why; setting the status it already has changes nothing."""
    with engine.begin() as conn:
        update_status(conn, subscriber_id, status, reason=reason)


def update_status(conn: sa.Connection, subscriber_id: int, status: Status, *, reason: str) -> bool:
    """set_status within the caller's transaction; whether the status changed."""
    status = Status(status)
    row = _require(conn, subscriber_id)
    if row.status == status.value:
        return False
    conn.execute(
        S.update()
        .where(S.c.id == subscriber_id)
        .values(status=status.value, status_changed_at=now(), status_reason=reason)
    )
    return True


def set_networks(
    engine: sa.Engine, subscriber_id: int, networks: Iterable[str], *, known_networks: Iterable[str]
) -> None:
    """Replace the subscriber's networks (at least one, each defined in newsletter.yaml)."""
    chosen = check_networks(networks, known_networks=known_networks)
    with engine.begin() as conn:
        _require(conn, subscriber_id)
        conn.execute(N.delete().where(N.c.subscriber_id == subscriber_id))
        conn.execute(N.insert(), [dict(subscriber_id=subscriber_id, network=n) for n in sorted(chosen)])


def remove(engine: sa.Engine, email: str) -> None:
    """Delete the subscriber and its memberships (NotFound if there is none)."""
    found = find(engine, email)
    if found is None:
        raise NotFound(f"no subscriber {email.strip()!r}")
    with engine.begin() as conn:
        conn.execute(N.delete().where(N.c.subscriber_id == found.id))
        conn.execute(S.delete().where(S.c.id == found.id))
