"""Signed per-subscriber tokens for unsubscribe and preferences links.

A token is fixed-length (TOKEN_LENGTH characters, URL-safe), so a message rendered once with a
placeholder of that length can be personalised by a plain byte replace without changing any
line length. It carries the subscriber id and when it was issued, and an HMAC over both and the
address, so it is bound to the address and cannot be guessed or altered.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import BadToken

TOKEN_LENGTH = 38  # base64url of 8 + 4 + 16 bytes, unpadded
PLACEHOLDER = "T" * TOKEN_LENGTH
_LAYOUT = struct.Struct(">QI")
_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")


@dataclass(frozen=True)
class Token:
    subscriber_id: int
    issued: dt.datetime


class Signer:
    """Makes and checks tokens with one secret key; `clock` (seconds since the epoch) dates and ages them."""

    def __init__(
        self,
        secret: str | bytes,
        *,
        max_age: dt.timedelta = dt.timedelta(days=180),
        clock: Callable[[], float] = time.time,
    ):
        if not secret:
            raise ValueError("a secret key is required to sign tokens")
        self._key = secret.encode() if isinstance(secret, str) else secret
        self.max_age = max_age
        self.clock = clock

    def _mac(self, head: bytes, email: str) -> bytes:
        return hmac.new(self._key, head + email.strip().lower().encode(), hashlib.sha256).digest()[:16]

    def sign(self, subscriber_id: int, email: str, *, issued: float | None = None) -> str:
        head = _LAYOUT.pack(subscriber_id, int(self.clock() if issued is None else issued))
        return base64.urlsafe_b64encode(head + self._mac(head, email)).rstrip(b"=").decode()

    @staticmethod
    def peek(token: str) -> Token:
        """The claims of a well-formed token, not yet verified: use to look up the address."""
        if not isinstance(token, str) or not _SHAPE.fullmatch(token):
            raise BadToken("malformed token")
        raw = base64.urlsafe_b64decode(token + "==")
        subscriber_id, issued = _LAYOUT.unpack(raw[: _LAYOUT.size])
        return Token(subscriber_id, dt.datetime.fromtimestamp(issued, dt.UTC))

    def authentic(self, token: str, email: str) -> Token:
        """The token's claims if it was signed here for `email`, whatever its age (unsubscribe links never expire)."""
        claims = self.peek(token)
        raw = base64.urlsafe_b64decode(token + "==")
        if not hmac.compare_digest(raw[_LAYOUT.size :], self._mac(raw[: _LAYOUT.size], email)):
            raise BadToken("token does not match")
        return claims

    def expired(self, claims: Token, *, now: float | None = None) -> bool:
        """The token was issued longer than max_age ago."""
        age = (self.clock() if now is None else now) - claims.issued.timestamp()
        return age > self.max_age.total_seconds()

    def verify(self, token: str, email: str, *, now: float | None = None) -> Token:
        """The token's claims if it was signed here for `email` and has not expired."""
        claims = self.authentic(token, email)
        if self.expired(claims, now=now):
            raise BadToken("token has expired")
        return claims
