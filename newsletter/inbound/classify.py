"""What an inbound message is: a bounce, a complaint, an unsubscribe request, an automatic reply, or unrecognised.

Delivery status notifications (RFC 3464) are read here, field by field; the non-standard ones
(Exchange, Gmail, Yahoo, old Postfix, Exim, qmail...) by flufl.bounce, Mailman's detector.
Complaints are ARF feedback reports (RFC 5965). Nothing here touches the store: `classify` only
says what the message is and who it names; process.py decides what changes.
"""

from __future__ import annotations

import datetime as dt
import email
import email.parser
import hashlib
import logging
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum

from ..message import message_id_parts, tag_of, unverp
from ..tokens import TOKEN_LENGTH

logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)  # it logs every detector it tries

RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")
MAILER_DAEMONS = frozenset({"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon"})
NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})  # RFC 6591/6650 report types that are not a reader's complaint
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX_FULL = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|insufficient (system )?storage|5\.2\.2", re.IGNORECASE
)
_TOKEN = re.compile(rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}(?![A-Za-z0-9_-])")
_LINK_TOKEN = re.compile(rf"/unsubscribe/([A-Za-z0-9_-]{{{TOKEN_LENGTH}}})\b")
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ _-]?(reply|response|antwort)|out of (the )?office|ooo\b|abwesen|automatische antwort"
    r"|r[ée]ponse automatique|absence|vacation|away from|on leave|i am away|i'm away)",
    re.IGNORECASE,
)
DIAGNOSTIC_CHARS = 500


class Kind(StrEnum):
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    AUTO_REPLY = "auto-reply"
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce names: whether it is permanent, its status code and the receiving server's words."""

    email: str
    hard: bool
    status: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class Classified:
    """What the message is and every clue to whom it is about, strongest first (see process.find_subscriber)."""

    kind: Kind
    key: str  # the Message-ID, or a hash of the bytes: the same message handled twice has the same key
    why: str  # what gave it away, or why it is unrecognised
    verp_id: int | None = None  # from the VERP address it was sent to (or the original's envelope sender)
    token: str | None = None  # a reader's signed token: mailto local part, subject, or the original's List-Unsubscribe
    message_id_id: int | None = None  # the subscriber id in our original Message-ID
    issue_date: dt.date | None = None
    failures: tuple[Failure, ...] = ()
    addresses: tuple[str, ...] = ()  # a guess from the body: failed or reported recipients

    @property
    def hard(self) -> bool:
        return any(f.hard for f in self.failures)


def classify(data: bytes, *, bounce_address: str | None = None, unsubscribe_address: str | None = None) -> Classified:
    """Read one raw message; never raises for a bad message (it is UNRECOGNISED, with why)."""
    key = message_key(data)
    try:
        msg = email.message_from_bytes(data)  # the compat32 Message that flufl.bounce expects
        if not data.strip() or not msg.keys():
            return Classified(Kind.UNRECOGNISED, key, "not an email message (no header fields)")
        return _classify(msg, key, bounce_address, unsubscribe_address)
    except Exception as exc:
        return Classified(Kind.UNRECOGNISED, key, f"cannot be read: {type(exc).__name__}: {exc}")


def message_key(data: bytes) -> str:
    """The Message-ID if the message has one, else the SHA-256 of its bytes."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = re.search(rb"^message-id:[ \t]*(<[^>\r\n]{1,380}>)", head, re.IGNORECASE | re.MULTILINE)
    return found[1].decode("ascii", "replace") if found else "sha256:" + hashlib.sha256(data).hexdigest()


def _classify(msg: Message, key: str, bounce_address: str | None, unsubscribe_address: str | None) -> Classified:
    recipients = _addresses(msg, RECIPIENT_HEADERS)
    verp_id = _verp(bounce_address, recipients)
    original = _original_headers(msg)
    clues = _original_clues(original, bounce_address)
    if verp_id is not None:
        clues["verp_id"] = verp_id

    report = _part(msg, "message/feedback-report")
    if report is not None:
        return _complaint(report, key, clues, bounce_address)
    if _report_type(msg) == "delivery-status" or _part(msg, "message/delivery-status") is not None:
        failures = _dsn_failures(msg)
        if failures:
            return Classified(Kind.BOUNCE, key, "delivery status notification", failures=failures, **clues)
        return Classified(Kind.AUTO_REPLY, key, "a delivery report without a failure")
    if unsubscribe_address:
        request = _unsubscribe(msg, key, recipients, unsubscribe_address)
        if request is not None:
            return request
    automatic = _auto_reply(msg)
    if automatic and not _from_mailer_daemon(msg):
        return Classified(Kind.AUTO_REPLY, key, automatic)
    failures = _detected_failures(msg)
    if failures:
        return Classified(Kind.BOUNCE, key, "non-standard bounce", failures=failures, **clues)
    if automatic:
        return Classified(Kind.AUTO_REPLY, key, automatic)
    return Classified(
        Kind.UNRECOGNISED, key, "neither a bounce, a complaint, an unsubscribe request nor an automatic reply"
    )


# where it was sent and what it answers ------------------------------------------------------


def _addresses(msg: Message, names: tuple[str, ...]) -> list[str]:
    values = [str(v) for name in names for v in msg.get_all(name, [])]
    return [address for _, address in getaddresses(values) if "@" in address]


def _verp(bounce_address: str | None, addresses: list[str]) -> int | None:
    if not bounce_address:
        return None
    return next((sid for sid in (unverp(bounce_address, a) for a in addresses) if sid is not None), None)


def _part(msg: Message, content_type: str) -> Message | None:
    return next((part for part in msg.walk() if part.get_content_type() == content_type), None)


def _report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    value = msg.get_param("report-type")
    return value.lower() if isinstance(value, str) else None


def _original_headers(msg: Message) -> Message | None:
    """The header fields of the message that this one returns or reports (message/rfc822 or text/rfc822-headers)."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part is not msg:
            inner = _inner(part)
            if inner:
                return inner[0]
        if kind == "text/rfc822-headers":
            return email.parser.BytesHeaderParser().parsebytes(_decoded(part))
    return None


def _inner(part: Message) -> list[Message]:
    """The messages (or header blocks) a message/* part holds."""
    payload = part.get_payload()
    return [item for item in payload if isinstance(item, Message)] if isinstance(payload, list) else []


def _decoded(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _original_clues(original: Message | None, bounce_address: str | None) -> dict:
    """verp_id, token, message_id_id and issue_date found in the returned original's header fields."""
    if original is None:
        return {}
    clues: dict = {}
    verp_id = _verp(bounce_address, _addresses(original, ("Return-Path",)))
    if verp_id is not None:
        clues["verp_id"] = verp_id
    parts = message_id_parts(str(original.get("Message-ID", "")))
    if parts is not None:
        clues["issue_date"], clues["message_id_id"] = parts
    found = _LINK_TOKEN.search(" ".join(str(original.get("List-Unsubscribe", "")).split()))
    if found:
        clues["token"] = found[1]
    return clues


# complaints (RFC 5965) --------------------------------------------------------------------------


def _complaint(report: Message, key: str, clues: dict, bounce_address: str | None) -> Classified:
    fields = next(iter(_inner(report)), report)
    feedback = str(fields.get("Feedback-Type", "")).strip().lower()
    if feedback in NOT_COMPLAINTS:
        return Classified(Kind.UNRECOGNISED, key, f"a feedback report of type {feedback!r}, not a complaint")
    if "verp_id" not in clues:
        verp_id = _verp(bounce_address, _addresses(fields, ("Original-Mail-From",)))
        if verp_id is not None:
            clues = {**clues, "verp_id": verp_id}
    reported = tuple(_addresses(fields, ("Original-Rcpt-To",)))
    return Classified(
        Kind.COMPLAINT, key, f"feedback report ({feedback or 'no Feedback-Type'})", addresses=reported, **clues
    )


# bounces ----------------------------------------------------------------------------------------


def _dsn_failures(msg: Message) -> tuple[Failure, ...]:
    """The failed and delayed recipients of an RFC 3464 report, with their Status and Diagnostic-Code."""
    failures = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _inner(part):
            recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
            action = str(block.get("Action", "")).strip().lower()
            if not recipient or action not in ("failed", "delayed"):
                continue
            address = str(recipient).partition(";")[2].strip().strip("<>") or str(recipient).strip()
            status = _status(str(block.get("Status", "")))
            diagnostic = _words(
                str(block.get("Diagnostic-Code", "")).partition(";")[2] or str(block.get("Diagnostic-Code", ""))
            )
            hard = (
                action == "failed"
                and (status is None or status.startswith("5"))
                and not _mailbox_full(status, diagnostic)
            )
            failures.append(Failure(address, hard, status, diagnostic or None))
    return tuple(failures)


def _detected_failures(msg: Message) -> tuple[Failure, ...]:
    """Failed recipients of a non-standard bounce, as flufl.bounce finds them, with what the text says of each."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        return ()
    text = _notice_text(msg)
    failures = []
    for raw in sorted(temporary | permanent):
        address = raw.decode("utf-8", "replace")
        status, diagnostic = _said_about(text, address)
        hard = raw in permanent and (status is None or status.startswith("5")) and not _mailbox_full(status, diagnostic)
        failures.append(Failure(address, hard, status, diagnostic))
    return tuple(failures)


def _notice_text(msg: Message) -> str:
    """The human-readable part of a bounce: every text part before the returned original."""
    texts = []
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            break
        if part.get_content_maintype() == "text" or (not part.is_multipart() and part is msg):
            texts.append(_text(_decoded(part), part.get_content_charset()))
    return "\n".join(texts)


def _text(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


def _said_about(text: str, address: str) -> tuple[str | None, str | None]:
    """(enhanced status code, the server's words) from the lines of `text` that name `address`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if address.lower() in line.lower():
            window = _words(" ".join(lines[i : i + 4]))
            return _status(window) or _status(text), window or None
    return _status(text), None


def _status(text: str) -> str | None:
    found = _ENHANCED.search(text)
    return ".".join(found.groups()) if found else None


def _words(text: str) -> str:
    return " ".join(text.split())[:DIAGNOSTIC_CHARS]


def _mailbox_full(status: str | None, diagnostic: str | None) -> bool:
    """A full mailbox is counted as a soft bounce even when the server calls it permanent (5.2.2)."""
    return status == "5.2.2" or bool(diagnostic and _MAILBOX_FULL.search(diagnostic))


# unsubscribe requests and automatic replies ---------------------------------------------------


def _unsubscribe(msg: Message, key: str, recipients: list[str], unsubscribe_address: str) -> Classified | None:
    """A message to unsubscribe+TOKEN@… (or to the bare address, the token in its subject); else None."""
    bare = unsubscribe_address.strip().lower()
    for address in recipients:
        tag = tag_of(unsubscribe_address, address)
        if tag is not None:
            return Classified(Kind.UNSUBSCRIBE, key, f"sent to {address}", token=tag)
    if any(address.lower() == bare for address in recipients):
        found = _TOKEN.search(_subject(msg))
        return Classified(Kind.UNSUBSCRIBE, key, f"sent to {unsubscribe_address}", token=found[0] if found else None)
    return None


def _auto_reply(msg: Message) -> str | None:
    """Which mark shows that a message was sent automatically (RFC 3834 and the common vendor ones), or None."""
    submitted = str(msg.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-MS-Exchange-Inbox-Rules-Loop"):
        if msg.get(name) is not None:
            return f"{name} header"
    if str(msg.get("X-MS-Exchange-Generated-Message-Source", "")).strip():
        return "X-MS-Exchange-Generated-Message-Source header"
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    if _AUTO_SUBJECT.search(_subject(msg)):
        return "its subject"
    return None


def _subject(msg: Message) -> str:
    return str(make_header(decode_header(str(msg.get("Subject", "")))))


def _from_mailer_daemon(msg: Message) -> bool:
    return any(address.partition("@")[0].lower() in MAILER_DAEMONS for address in _addresses(msg, ("From",)))
