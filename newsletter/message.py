"""Per-recipient messages: the MIME body is encoded once per rendered variant, then personalised by bytes.

A Composer turns one rendered variant into a bytes template: the quoted-printable body with the
fixed-length token placeholder kept whole on one line, and the headers that do not change.
`message()` then only signs a token, joins bytes and writes the few per-recipient headers, so
sending 100,000 messages never renders or re-serialises anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time
from base64 import b32encode
from dataclasses import dataclass, field
from email import policy
from email.charset import QP, Charset
from email.utils import format_datetime
from typing import TYPE_CHECKING, Protocol

import idna

from . import links
from .content import Newsletter
from .errors import ConfigError, UnsafeHeaderValue
from .tokens import PLACEHOLDER, Signer

if TYPE_CHECKING:
    from .dkim import DKIMKey

CRLF = b"\r\n"
QP_LINE = 76  # RFC 2045: encoded lines at most 76 characters, soft break "=" included
_PLACEHOLDER = PLACEHOLDER.encode()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS = re.compile(r"[^\s<>@,;:\"()\[\]\\]+@[^\s<>@,;:\"()\[\]\\]+")
_QP_LITERAL = frozenset(range(33, 127)) - {ord("=")}
_QP_ESCAPE = [b"=%02X" % b for b in range(256)]
SIGNED_HEADERS = [
    b"from", b"reply-to", b"to", b"subject", b"date", b"message-id", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
]  # fmt: skip
# Listed once more: a header added after signing (a second From, Subject...) then breaks the signature.
OVERSIGNED = [b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"]


class Rendered(Protocol):
    """A rendered variant, as render.Rendered gives it (read-only here)."""

    @property
    def subject(self) -> str: ...
    @property
    def preheader(self) -> str: ...
    @property
    def html(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Outgoing:
    """One message ready for a transport: the envelope and the exact bytes (CRLF line endings, no bare CR or LF:
    transports send them as they are)."""

    mail_from: str  # envelope sender (the VERP address when a bounce address is configured)
    to: str  # envelope recipient
    message_id: str  # without angle brackets
    data: bytes = field(repr=False)


# header values ---------------------------------------------------------------------------------


def _safe(what: str, value: str) -> str:
    if _CONTROL.search(value):
        raise UnsafeHeaderValue(what, value)
    return value


def _address(what: str, email: str) -> str:
    _safe(what, email)
    if not _ADDRESS.fullmatch(email):
        raise UnsafeHeaderValue(what, email, "not an email address")
    return email


def _fold(name: str, value: str, *, utf8: bool = False) -> bytes:
    """A header field folded to 78 characters, non-ASCII as RFC 2047 encoded words (RFC 6532 UTF-8 if `utf8`)."""
    rules = policy.SMTPUTF8 if utf8 else policy.SMTP
    return rules.header_factory(name, value).fold(policy=rules).encode("utf-8")


_WORDS = Charset("utf-8")
_WORDS.header_encoding = QP
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/^_`{|}~ -]*[A-Za-z0-9!#$%&'*+/^_`{|}~-]")  # a phrase needing no quotes


def _mailbox(what: str, name: str | None, email: str) -> str:
    """`Name <email>` with the name quoted as needed, ready for _fold."""
    _address(what, email)
    if not name:
        return email
    return f"{name if _ATOMS.fullmatch(_safe(what, name)) else _quoted(name)} <{email}>"


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ascii_address(email: str) -> str:
    """`email` with an international domain in its ASCII (IDNA) form when the local part is ASCII.

    anwen@bücher.example travels as anwen@xn--bcher-kva.example, which every relay takes; only a
    non-ASCII local part needs SMTPUTF8 (RFC 6531). Left as it is when the domain is no valid IDNA.
    """
    local, _, domain = email.rpartition("@")
    if email.isascii() or not local.isascii():
        return email
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return email


def _domain(email: str) -> str:
    return email.rpartition("@")[2].encode("idna").decode("ascii").lower()


def verp(bounce_address: str, subscriber_id: int) -> str:
    """The envelope sender for one subscriber: bounces@example.org -> bounces+42@example.org."""
    return _tagged("bounce address", bounce_address, str(subscriber_id))


def unverp(bounce_address: str, address: str) -> int | None:
    """The subscriber id in a VERP address made by verp(), or None: bounces+42@example.org -> 42."""
    tag = tag_of(bounce_address, address)
    return int(tag) if tag and tag.isascii() and tag.isdigit() and len(tag) < 10 else None


def _tagged(what: str, base: str, tag: str) -> str:
    local, _, domain = _address(what, base).rpartition("@")
    return f"{local}+{tag}@{domain}"


def tag_of(base: str, address: str) -> str | None:
    """The +tag of `address` if it is `base` with one (local part and domain ignoring case), else None."""
    local, _, domain = base.strip().rpartition("@")
    their_local, _, their_domain = address.strip().strip("<>").rpartition("@")
    head, plus, tag = their_local.partition("+")
    if not plus or head.lower() != local.lower() or their_domain.lower() != domain.lower():
        return None
    return tag or None


def message_id_parts(message_id: str) -> tuple[dt.date, int] | None:
    """(issue date, subscriber id) from a Message-ID made by Composer.message_id, else None."""
    found = re.fullmatch(r"<?(\d{8})\.(\d{1,9})\.[a-z2-7]{16}@[^>]+>?", message_id.strip())
    if not found:
        return None
    try:
        day = found[1]
        return dt.date(int(day[:4]), int(day[4:6]), int(day[6:])), int(found[2])
    except ValueError:
        return None


_last_date: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    """`Date:` for the current second (cached: it changes once a second)."""
    global _last_date
    now = int(time.time())
    if _last_date[0] != now:
        stamp = format_datetime(dt.datetime.fromtimestamp(now, dt.UTC))
        _last_date = (now, b"Date: " + stamp.encode() + CRLF)
    return _last_date[1]


# the body --------------------------------------------------------------------------------------


def quoted_printable(text: str, *, keep: bytes = _PLACEHOLDER) -> bytes:
    """`text` as UTF-8 quoted-printable, each line ending in CRLF and at most 76 characters.

    Soft line breaks never fall inside `keep` (the token placeholder), so the placeholder can later
    be replaced by a token of the same length without touching any line. A dot starting a line is
    encoded (=2E), so the SMTP transport finds nothing to dot-stuff in a 60 KB body.
    """
    out: list[bytes] = []
    width = QP_LINE - 1  # room left for a soft break's "="
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start another
    for line in lines:
        data = line.encode("utf-8")
        units: list[bytes] = []
        i, end = 0, len(data)
        while i < end:
            if keep and data.startswith(keep, i):
                units.append(keep)
                i += len(keep)
                continue
            byte = data[i]
            if byte in _QP_LITERAL or (byte in (9, 32) and i + 1 < end):
                units.append(data[i : i + 1])
            else:
                units.append(_QP_ESCAPE[byte])
            i += 1
        current = 0
        pieces: list[bytes] = []
        for unit in units:
            if current + len(unit) > width:
                pieces.append(b"=\r\n")
                current = 0
            if current == 0 and unit == b".":
                unit = b"=2E"  # no line starts with a dot: SMTP then has nothing to dot-stuff (RFC 5321 4.5.2)
            pieces.append(unit)
            current += len(unit)
        pieces.append(CRLF)
        out.append(b"".join(pieces))
    return b"".join(out)


def _part(content_type: bytes, text: str) -> bytes:
    return (
        b"Content-Type: " + content_type + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + quoted_printable(text)
    )


def _multipart(text: str, html: str) -> tuple[bytes, bytes]:
    """(Content-Type header value, body): text/plain first, text/html last, as clients expect."""
    text_part, html_part = _part(b"text/plain", text), _part(b"text/html", html)
    # "=_" never occurs in quoted-printable output, so this boundary cannot collide with content.
    boundary = b"=_nl_" + secrets.token_hex(12).encode()
    body = b"".join([b"--", boundary, CRLF, text_part, b"--", boundary, CRLF, html_part, b"--", boundary, b"--", CRLF])
    return b'multipart/alternative; boundary="' + boundary + b'"', body


# composing -------------------------------------------------------------------------------------


class Composer:
    """Built once per (issue, variant); .message() personalises in well under a millisecond."""

    def __init__(
        self,
        newsletter: Newsletter,
        rendered: Rendered,
        *,
        issue_date: dt.date,
        signer: Signer,
        dkim: DKIMKey | None = None,
        bounce_address: str | None = None,
        unsubscribe_address: str | None = None,
        test: bool = False,
    ) -> None:
        self.newsletter = newsletter
        self.issue_date = issue_date
        self.signer = signer
        self.dkim = dkim
        self.bounce_address = bounce_address and _address("bounce address", bounce_address)
        self.test = test
        self.domain = _domain(newsletter.sender.email)

        unsubscribe = links.unsubscribe_url(newsletter.public_url, PLACEHOLDER)
        for part in ("html", "text"):
            if unsubscribe not in getattr(rendered, part):
                raise ConfigError(
                    f"the email template's {part} part has no unsubscribe link ({unsubscribe}): cannot send it"
                )

        content_type, body = _multipart(rendered.text, rendered.html)
        # The body split at each placeholder: a recipient's body is token.join(self._body).
        self._body = body.split(_PLACEHOLDER)
        self._dkim = dkim.variant(self._body, SIGNED_HEADERS + OVERSIGNED) if dkim else None
        subject = f"[TEST] {rendered.subject}" if test else rendered.subject
        slug = re.sub(r"[^a-z0-9]+", "-", newsletter.name.lower()).strip("-") or "newsletter"
        self._list_id = f"{slug}.{self.domain}"
        reply_to = newsletter.reply_to
        self._head = b"".join(
            [
                _fold("From", _mailbox("sender", newsletter.sender.name, newsletter.sender.email)),
                _fold("Reply-To", _address("reply_to", reply_to)) if reply_to else b"",
            ]
        )
        self._subject = _fold("Subject", _safe("subject", subject))
        self._list = _fold("List-Id", f"{_safe('name', newsletter.name)} <{self._list_id}>")
        # The mailto goes to an address the service reads (newsletter inbound), never to a person.
        mailto = (
            f",\r\n <mailto:{_tagged('unsubscribe address', unsubscribe_address, PLACEHOLDER)}>"
            if unsubscribe_address
            else ""
        )
        self._unsubscribe = f"List-Unsubscribe: <{unsubscribe}>{mailto}\r\n".encode().split(_PLACEHOLDER)
        self._tail = b"".join(
            [
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                b"Precedence: bulk\r\n",
                b"X-Auto-Response-Suppress: OOF, AutoReply\r\n",  # Exchange/Outlook: no out-of-office replies to this
                b"MIME-Version: 1.0\r\n",
                b"Content-Type: " + content_type + CRLF,
                CRLF,
            ]
        )

    def message_id(self, subscriber_id: int) -> str:
        """Deterministic per (newsletter, issue, subscriber): a resend after a crash reuses it, so receivers can dedupe."""
        if self.test:
            return f"{self.issue_date:%Y%m%d}.test.{secrets.token_hex(8)}@{self.domain}"
        seed = f"{self._list_id}|{self.issue_date.isoformat()}|{subscriber_id}".encode()
        digest = b32encode(hashlib.sha256(seed).digest()[:10]).decode().lower()
        return f"{self.issue_date:%Y%m%d}.{subscriber_id}.{digest}@{self.domain}"

    def message(self, *, subscriber_id: int, email: str, name: str | None) -> Outgoing:
        """The message for one subscriber, with their own token in the unsubscribe links and headers."""
        to = _to_header(ascii_address(email), name)
        token = self.signer.sign(subscriber_id, email).encode("ascii")
        message_id = self.message_id(subscriber_id)
        head = b"".join(
            [
                self._head,
                to,
                self._subject,
                _date_header(),
                b"Message-ID: <" + message_id.encode("ascii") + b">\r\n",
                self._list,
                token.join(self._unsubscribe),
                self._tail,
            ]
        )
        signature = self._dkim.sign(head, token) if self._dkim is not None else b""
        data = b"".join([signature, head, token.join(self._body)])
        mail_from = verp(self.bounce_address, subscriber_id) if self.bounce_address else self.newsletter.sender.email
        return Outgoing(mail_from=ascii_address(mail_from), to=ascii_address(email), message_id=message_id, data=data)


def _to_header(email: str, name: str | None) -> bytes:
    """`To: Name <email>`, the name quoted or RFC 2047-encoded as needed, folded at 78 where it can be."""
    _address("email", email)
    name = name and _safe("name", name).strip()
    if not email.isascii():
        return _fold("To", _mailbox("email", name, email), utf8=True)  # RFC 6532: the relay must offer SMTPUTF8
    if not name:
        return f"To: {email}\r\n".encode("ascii")
    if len(name) > 500:
        raise UnsafeHeaderValue("name", name, "longer than 500 characters")
    if _ATOMS.fullmatch(name):
        phrase = name
    elif name.isascii():
        phrase = _quoted(name)
    else:
        phrase = " ".join(_encoded_words(name))
    line = f"To: {phrase} <{email}>"
    return (line if len(line) <= 78 else _wrap(line)).encode("ascii") + CRLF


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 Q-encoded words of at most 75 characters, split after a space where there is one.

    A space stays inside the word before it: decoders drop the white space between encoded words.
    """
    chunks, current = [], ""
    for char in text:
        if current and len(_WORDS.header_encode(current + char)) > 75:
            cut = current.rfind(" ") + 1 or len(current)
            chunks.append(current[:cut])
            current = current[cut:]
            if len(_WORDS.header_encode(current + char)) > 75:
                chunks.append(current)
                current = ""
        current += char
    chunks.append(current)
    return [_WORDS.header_encode(chunk) for chunk in chunks if chunk]


def _wrap(line: str) -> str:
    """Fold a header line at its spaces so each line keeps within 78 characters where a space allows."""
    lines, current = [], ""
    for piece in re.split(r"(?= )", line):
        if current and len(current) + len(piece) > 78:
            lines.append(current)
            current = piece
        else:
            current += piece
    lines.append(current)
    return "\r\n".join(lines)


def notice(newsletter: Newsletter, *, to: str, subject: str, text: str) -> Outgoing:
    """A plain-text email from the newsletter's sender, e.g. to tell the editor a scheduled send did not happen."""
    domain = _domain(newsletter.sender.email)
    message_id = f"notice.{int(time.time())}.{secrets.token_hex(8)}@{domain}"
    to = ascii_address(to)
    data = b"".join(
        [
            _fold("From", _mailbox("sender", newsletter.sender.name, newsletter.sender.email)),
            _fold("To", _address("to", to), utf8=not to.isascii()),
            _fold("Subject", _safe("subject", subject)),
            _date_header(),
            b"Message-ID: <" + message_id.encode("ascii") + b">\r\n",
            b"Auto-Submitted: auto-generated\r\n",
            b"MIME-Version: 1.0\r\n",
            _part(b"text/plain", text),
        ]
    )
    return Outgoing(mail_from=ascii_address(newsletter.sender.email), to=to, message_id=message_id, data=data)
