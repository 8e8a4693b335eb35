"""A transport to an SMTP relay: a pool of reused aiosmtplib connections, rate limited, errors classified.

The exact bytes built (and DKIM-signed) are sent with MAIL/RCPT/DATA: nothing re-serialises them.
Every step (connect, greeting, EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA, RSET, QUIT) waits at most
`timeout` seconds. 4xx replies and dropped connections raise TemporaryDeliveryError; a relay that
cannot be reached or stops answering raises RelayUnavailable; refusals of the send itself (login,
our sender, 5.7.x relaying or policy, TLS) raise RelayRefused, so that a misconfigured relay pauses
a send instead of failing every subscriber; other 5xx replies raise PermanentDeliveryError.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtplib import (
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPRecipientRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPStatus,
)
from aiosmtplib.email import quote_address

from ..errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RelayRefused,
    RelayUnavailable,
    TemporaryDeliveryError,
)
from ..message import Outgoing
from ..ratelimit import RateLimiter
from ..urls import PERCENT_ENCODE, redacted
from .base import BaseTransport

_STALE = (aiosmtplib.SMTPServerDisconnected, ConnectionError)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


@dataclass(frozen=True)
class Relay:
    """Where and how to connect, from `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://host:465`."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Relay:
        """The relay `url` names; if it is malformed, a ConfigError showing no part of the user name or password."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if (
            parts is None
            or parts.scheme not in ("smtp", "smtps")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ConfigError(
                f"invalid SMTP URL {redacted(url)!r}: expected smtp://[user:pass@]host[:port] or smtps://...; {PERCENT_ENCODE}"
            )
        implicit_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit_tls else 587),
            implicit_tls=implicit_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


class SMTPTransport(BaseTransport):
    """Sends over up to `pool_size` reused connections; safe for many concurrent send() calls."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        verify: bool = True,
        rate_per_second: float | None = None,
        timeout: float = 30,
    ) -> None:
        if pool_size < 1:
            raise ConfigError(f"the SMTP pool needs at least one connection, not {pool_size}")
        self.relay = Relay.parse(url)
        self.verify = verify
        self.timeout = timeout
        self.limiter = RateLimiter(per_second=rate_per_second)
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False
        self.connections_opened = 0

    async def send(self, message: Outgoing) -> str:
        """Hand `message` to the relay; the reply (e.g. "250 2.0.0 Ok: queued as ...")."""
        if self._closed:
            raise RuntimeError("the SMTP transport is closed")
        async with self._slots:
            await self.limiter.acquire()
            while True:
                connection, reused = await self._take()
                try:
                    reply = await self._transact(connection, message, reused=reused)
                except _Stale:
                    continue  # an idle connection the server had closed: nothing was sent, take another
                except DeliveryError:
                    self._give_back(connection)  # still good after RSET, or closed already
                    raise
                except BaseException:
                    connection.close()  # cancelled mid-transaction: the connection's state is unknown
                    raise
                self._give_back(connection)
                return reply

    async def close(self) -> None:
        """Say QUIT on every idle connection; no more sends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await _discard(connection, polite=True, patience=min(self.timeout, 5))

    # connections ---------------------------------------------------------------------------

    async def _take(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected:
                return connection, True
            connection.close()
        return await self._connect(), False

    def _give_back(self, connection: aiosmtplib.SMTP) -> None:
        if self._closed or not connection.is_connected:
            connection.close()
        else:
            self._idle.append(connection)

    async def _connect(self) -> aiosmtplib.SMTP:
        relay = self.relay
        connection = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            use_tls=relay.implicit_tls,
            start_tls=False if relay.implicit_tls else None,  # None: upgrade when the server offers STARTTLS
            validate_certs=self.verify,
            timeout=self.timeout,
        )
        try:
            try:
                await connection.connect()
                if relay.username:
                    if connection.get_transport_info("sslcontext") is None:
                        raise RelayRefused(
                            f"{relay} offers no TLS: the password will not be sent in clear"
                            " (use smtps:// or a relay with STARTTLS)"
                        )
                    await connection.login(relay.username, relay.password or "")
            except SMTPResponseException as exc:
                kind = RelayUnavailable if 400 <= exc.code < 500 else RelayRefused
                raise kind(
                    f"{relay} refused us before any message: {exc.code} {exc.message}", code=exc.code, reply=exc.message
                ) from exc
            except ssl.SSLError as exc:
                raise RelayRefused(
                    f"cannot connect to {relay}: certificate not trusted (set verify off only for a test relay)"
                ) from exc
            except (TimeoutError, SMTPException, OSError) as exc:
                raise RelayUnavailable(f"cannot connect to {relay}: {exc or type(exc).__name__}") from exc
        except DeliveryError:
            await _discard(connection)
            raise
        self.connections_opened += 1
        return connection

    # one message ---------------------------------------------------------------------------

    async def _transact(self, connection: aiosmtplib.SMTP, message: Outgoing, *, reused: bool) -> str:
        stage = "MAIL FROM"
        try:
            await _greeted(connection)  # after connecting and after STARTTLS, as aiosmtplib's mail() does
            # MAIL and RCPT as aiosmtplib's mail() and rcpt() send them, without their parsing of the addresses again.
            options, encoding = self._mail_options(connection, message)
            reply = await connection.execute_command(b"MAIL", b"FROM:" + _path(message.mail_from, encoding), *options)
            if reply.code != SMTPStatus.completed:
                raise SMTPSenderRefused(reply.code, reply.message, message.mail_from)
            stage = "RCPT TO"
            reply = await connection.execute_command(b"RCPT", b"TO:" + _path(message.to, encoding))
            if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                raise SMTPRecipientRefused(reply.code, reply.message, message.to)
            stage = "DATA"
            response = await _data(connection, message.data, self.timeout)
        except SMTPResponseException as exc:
            if exc.code == 421 or not await self._reset(connection):
                connection.close()
            if exc.code == 421 and stage == "MAIL FROM" and reused:
                raise _Stale from exc
            raise _classify(exc, message, stage) from exc
        except (TimeoutError, *_STALE, SMTPException, OSError) as exc:
            connection.close()
            if stage == "MAIL FROM" and reused and isinstance(exc, _STALE):
                raise _Stale from exc
            if isinstance(exc, TimeoutError):  # the relay stopped answering: not this recipient's attempt
                raise RelayUnavailable(
                    f"{message.to}: {self.relay} did not answer {stage} within {self.timeout:g} s"
                ) from exc
            raise TemporaryDeliveryError(
                f"{message.to}: connection to {self.relay} lost at {stage}: {exc or type(exc).__name__}"
            ) from exc
        return f"{response.code} {response.message}"

    def _mail_options(self, connection: aiosmtplib.SMTP, message: Outgoing) -> tuple[list[bytes], str]:
        """MAIL FROM's parameters for `message`, and the encoding of its addresses."""
        options = [b"SIZE=%d" % len(message.data)] if connection.supports_extension("size") else []
        if message.mail_from.isascii() and message.to.isascii():
            return options, "ascii"
        if not connection.supports_extension("smtputf8"):
            raise PermanentDeliveryError(f"{message.to}: {self.relay} does not take non-ASCII addresses (no SMTPUTF8)")
        return [*options, b"SMTPUTF8"], "utf-8"

    @staticmethod
    async def _reset(connection: aiosmtplib.SMTP) -> bool:
        """RSET after a refusal so the connection can carry the next message; False if it is unusable."""
        try:
            await connection.rset()
            return True
        except (TimeoutError, SMTPException, OSError):
            return False


async def _greeted(connection: aiosmtplib.SMTP) -> None:
    """EHLO (HELO if the server refuses it) unless the server has answered one on this connection."""
    if connection.is_ehlo_or_helo_needed:
        try:
            await connection.ehlo()
        except SMTPHeloError:
            if not connection.is_connected:
                raise
            await connection.helo()


def _path(address: str, encoding: str) -> bytes:
    """`<address>` as aiosmtplib's quote_address makes it; a plain dot-atom address needs no parsing for that."""
    if _DOT_ATOM.fullmatch(address):
        return b"<" + address.encode("ascii") + b">"
    return quote_address(address).encode(encoding)


async def _data(connection: aiosmtplib.SMTP, data: bytes, seconds: float) -> SMTPResponse:
    """DATA, then the message (CRLF line endings, as Outgoing holds it) dot-stuffed and terminated here.

    aiosmtplib's data() runs two regular expressions over every message (about 0.5 ms for 60 KB,
    more than everything else we do per recipient); one bytes search here takes a hundredth of
    that (message.py's quoted-printable never starts a line with a dot). It drives aiosmtplib's
    protocol as its own execute_data_command does, and falls back to data() if a future aiosmtplib
    no longer has those parts.
    """
    protocol = connection.protocol
    if protocol is None or not all(
        hasattr(protocol, a) for a in ("_command_lock", "_response_pending", "read_response")
    ):
        return await connection.data(data)
    if protocol._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    if data.startswith(b".") or b"\r\n." in data:
        data = (b"." if data.startswith(b".") else b"") + data.replace(b"\r\n.", b"\r\n..")
    end = b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"  # written apart: no copy of the message
    async with protocol._command_lock:
        protocol._response_pending = True
        protocol.write(b"DATA\r\n")
        start = await protocol.read_response(timeout=seconds)
        if start.code != SMTPStatus.start_input:
            raise SMTPDataError(start.code, start.message)
        protocol._response_pending = True
        protocol.write(data)
        protocol.write(end)
        response = await protocol.read_response(timeout=seconds)
        if response.code != SMTPStatus.completed:
            raise SMTPDataError(response.code, response.message)
    return response


class _Stale(Exception):
    """The connection was dead before anything of the message was taken."""


def _classify(exc: SMTPResponseException, message: Outgoing, stage: str) -> DeliveryError:
    """A refusal as the engine needs it: try later (4xx), the relay refuses the send (5.7.x, sender), or the reader."""
    text = " ".join(exc.message.split())
    what = f"{message.to}: {exc.code} {text} (at {stage})"
    if 400 <= exc.code < 500:
        return TemporaryDeliveryError(what, code=exc.code, reply=text)
    error = PermanentDeliveryError(what, code=exc.code, reply=text)
    # Refused as the sender, or on security or policy grounds (RFC 3463 5.7.x: relaying denied, authentication
    # required): the relay's setup, never this recipient's fault, so never a failure or a bounce.
    if isinstance(exc, SMTPSenderRefused) or error.status.startswith("5.7.") or exc.code == 530:
        return RelayRefused(what, code=exc.code, reply=text)
    return error


async def _discard(connection: aiosmtplib.SMTP, *, polite: bool = False, patience: float = 5) -> None:
    """Close a connection (saying QUIT first if `polite`) and wait up to a second until its socket is closed.

    asyncio closes sockets on a later turn of the loop (after a TLS shutdown, several); a caller
    that ends its loop right after would otherwise leak the socket.
    """
    sock = connection.get_transport_info("socket") if connection.transport is not None else None
    if polite:
        with contextlib.suppress(SMTPException, OSError, asyncio.TimeoutError):
            await asyncio.wait_for(connection.quit(), patience)
    if isinstance(connection.transport, asyncio.Transport):
        connection.transport.abort()
    connection.close()
    for _ in range(100):
        if sock is None or sock.fileno() == -1:
            return
        await asyncio.sleep(0.01)
