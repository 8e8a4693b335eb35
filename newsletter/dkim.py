"""DKIM signing (RFC 6376, through dkimpy) with a key loaded once: receivers check it against DNS."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dkim as dkimpy
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from .errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class DKIMKey:
    """An RSA private key published in DNS at `{selector}._domainkey.{domain}`."""

    selector: str
    domain: str
    private_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for what, value in (("selector", self.selector), ("domain", self.domain)):
            if not _NAME.fullmatch(value):
                raise ConfigError(f"DKIM {what} {value!r} is not a DNS name")
        try:
            parse_pem_private_key(self.private_key)
        except (UnparsableKeyError, ValueError, IndexError) as exc:
            raise ConfigError(f"DKIM key for {self.domain} is not a PEM RSA private key ({exc})") from None

    @classmethod
    def load(cls, path: Path | str, selector: str, domain: str) -> DKIMKey:
        try:
            private_key = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the DKIM key {path}: {exc.strerror}") from None
        return cls(selector, domain.lower(), private_key)

    def sign(self, message: bytes, headers: list[bytes]) -> bytes:
        """The DKIM-Signature header field (CRLF-terminated) over `headers` and the body of `message`."""
        return dkimpy.sign(
            message,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers,
        )
