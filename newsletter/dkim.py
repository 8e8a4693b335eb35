"""DKIM signing (RFC 6376, Ed25519 per RFC 8463): dkimpy's canonicalisation, the signature itself by OpenSSL.

dkimpy does the RSA step in pure Python (about 9 ms a message); here the hash and the signature are done
by `cryptography`, the keys are parsed once per process, and a variant's body is canonicalised once, so
per recipient only the token is hashed in and the headers are canonicalised and signed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim import RE_BTAG, fold, rfc822_parse, select_headers
from dkim.canonicalization import CanonicalizationPolicy

from .errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
_TOKEN = re.compile(rb"[^\s\x00]*")  # what may replace a split in the body: canonicalisation leaves it alone
_SPLIT = b"\x00"  # never in a message body (quoted-printable has no NUL); relaxed canonicalisation keeps it
_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_NAME_LENGTH = len(b"DKIM-Signature")
MIN_RSA_BITS = 1024  # receivers reject shorter keys (RFC 8301); 2048 is what they recommend


@functools.lru_cache(maxsize=16)
def _rsa(pem: bytes) -> rsa.RSAPrivateKey:
    """The parsed RSA key (cached: parsing costs more than a signature)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"not a PEM RSA private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"not a PEM RSA private key (it is {type(key).__name__.removeprefix('_')})")
    if key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"an RSA key of {key.key_size} bits: receivers need at least {MIN_RSA_BITS} (2048 is usual)")
    return key


@functools.lru_cache(maxsize=16)
def _ed25519(data: bytes) -> ed25519.Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 key, or the base64 32-byte seed dkimpy's dknewkey writes."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"not an Ed25519 private key, PEM or base64 ({exc})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"not an Ed25519 private key (it is {type(key).__name__.removeprefix('_')})")
    return key


def _read(path: Path | str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the DKIM key {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class DKIMKey:
    """The signing domain's RSA key at `{selector}._domainkey.{domain}`, and optionally an Ed25519 key
    signing beside it (RFC 8463) at `{selector}-ed25519._domainkey.{domain}`: every message gets both."""

    selector: str
    domain: str
    private_key: bytes = field(repr=False)  # PEM, PKCS#1 or PKCS#8
    ed25519_key: bytes | None = field(default=None, repr=False)  # PEM (PKCS#8) or base64 seed

    def __post_init__(self) -> None:
        for what, value in (("selector", self.selector), ("domain", self.domain)):
            if not _NAME.fullmatch(value):
                raise ConfigError(f"DKIM {what} {value!r} is not a DNS name")
        for load, data in ((_rsa, self.private_key), (_ed25519, self.ed25519_key)):
            try:
                if data is not None:
                    load(data)
            except ConfigError as exc:
                raise ConfigError(f"DKIM key for {self.domain} is {exc}") from None

    @classmethod
    def load(cls, path: Path | str, selector: str, domain: str, *, ed25519: Path | str | None = None) -> DKIMKey:
        """The key files named by the settings: `path` RSA, `ed25519` the optional second key."""
        return cls(selector, domain.lower(), _read(path), _read(ed25519) if ed25519 else None)

    @property
    def ed25519_selector(self) -> str:
        return f"{self.selector}-ed25519"

    def dns_records(self) -> dict[str, str]:
        """Each key's TXT record to publish, by DNS name: what receivers check the signatures against."""
        der = (
            _rsa(self.private_key)
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        records = {f"{self.selector}._domainkey.{self.domain}": f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"}
        if self.ed25519_key is not None:
            raw = _ed25519(self.ed25519_key).public_key().public_bytes_raw()
            records[f"{self.ed25519_selector}._domainkey.{self.domain}"] = (
                f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
            )
        return records

    def variant(self, body_parts: Sequence[bytes], headers: Sequence[bytes]) -> VariantSigner:
        """A signer for messages whose body is `token.join(body_parts)`, the token differing per recipient."""
        return VariantSigner(self, body_parts, headers)

    def sign(self, message: bytes, headers: Sequence[bytes]) -> bytes:
        """The DKIM-Signature header fields (CRLF-terminated, RSA first) over `headers` and the body of `message`."""
        head, separator, body = message.partition(b"\r\n\r\n")
        return self.variant([body], headers).sign(head + separator, b"")


class VariantSigner:
    """One variant's body canonicalised (relaxed) and hashed up to the first token, once for every recipient."""

    def __init__(self, key: DKIMKey, body_parts: Sequence[bytes], headers: Sequence[bytes]) -> None:
        parts = _RELAXED.canonicalize_body(_SPLIT.join(body_parts)).split(_SPLIT)
        if len(parts) != len(body_parts):
            raise ValueError("a body part holds a NUL byte")  # never from message.py: quoted-printable has none
        self._parts = parts[1:]
        self._prefix = hashlib.sha256(parts[0])
        self._include = include = tuple(name.lower() for name in headers)
        if b"from" not in include:
            raise ValueError("DKIM must sign the From header field (RFC 6376 section 5.4)")
        self._signatures = [
            _Signature(b"rsa-sha256", key.selector, key.domain, include, _rsa_signer(_rsa(key.private_key)))
        ]
        if key.ed25519_key is not None:
            sign = _ed25519(key.ed25519_key).sign
            self._signatures.append(_Signature(b"ed25519-sha256", key.ed25519_selector, key.domain, include, sign))

    def sign(self, head: bytes, token: bytes) -> bytes:
        """The DKIM-Signature header fields for the message `head + token.join(body_parts)`."""
        if not _TOKEN.fullmatch(token):
            raise ValueError("the token holds white space: it would change the canonical body")
        body = self._prefix.copy()
        for part in self._parts:
            body.update(token)
            body.update(part)
        body_hash = base64.b64encode(body.digest())
        signed = hashlib.sha256()  # the signed header fields, as dkimpy's hash_headers hashes them: once for every key
        for line in _signed_lines(head, self._include):
            signed.update(line)
        stamp = str(int(time.time())).encode("ascii")
        return b"".join(signature.header(signed, stamp, body_hash) for signature in self._signatures)


_FIELD = re.compile(rb"\r\n(?![ \t])")  # where a header field ends: a line break not folding it onto the next line
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")  # what dkimpy's rfc822_parse takes for a field's name


def _signed_lines(head: bytes, include: tuple[bytes, ...]) -> list[bytes]:
    """The relaxed canonical `name:value\r\n` of each field `include` names, as dkimpy selects them from `head`.

    The same bytes as dkimpy's rfc822_parse, canonicalize_headers and select_headers give (the last
    field of a name first, a name listed again taking the one above it), in a tenth of their time:
    the fields are split with one regular expression, and those the same in every message of a
    variant (From, Subject, Content-Type...) are canonicalised once.
    """
    text = head.removesuffix(b"\r\n\r\n").removesuffix(b"\r\n")
    fields = _FIELD.split(text)
    if b"\r\n\r\n" in text or text.count(b"\n") != text.count(b"\r\n") or not all(map(_FIELD_NAME.match, fields)):
        return [name + b":" + value for name, value in _slow_select(head, include)]  # not as message.py writes them
    found: dict[bytes, list[bytes]] = {}
    for raw in fields:
        name, line = _canonical(raw)
        found.setdefault(name, []).append(line)
    return [found[name].pop() for name in include if found.get(name)]


@functools.lru_cache(maxsize=256)  # a variant's fixed fields stay in: each message uses them again
def _canonical(field: bytes) -> tuple[bytes, bytes]:
    """(lowercase name, `name:value\r\n`) of one header field, relaxed (RFC 6376 section 3.4.2)."""
    name, _, value = field.partition(b":")
    name = name.lower().rstrip()
    return name, name + b":" + _WHITESPACE.sub(b" ", value.replace(b"\r\n", b"")).strip() + b"\r\n"


def _slow_select(head: bytes, include: tuple[bytes, ...]) -> list[tuple[bytes, bytes]]:
    return select_headers(_RELAXED.canonicalize_headers(rfc822_parse(head)[0]), include)


_WHITESPACE = re.compile(rb"[\t ]+")
_STAMP, _BODY_HASH = b"9" * 10, b"#" * 44  # t= and bh= are this long until the year 2286; bh= always
_FILL = {b"t": b"\x01", b"bh": b"\x02", b"b": b"\x03"}  # stand-ins for the values, while folding the header once


class _Signature:
    """One key's DKIM-Signature, as dkimpy's DomainSigner.gen_header builds it, with the signature done by `sign`.

    The tags are folded and canonicalised once: per message only t=, bh= and b= change, and they keep their length.
    """

    def __init__(
        self, algorithm: bytes, selector: str, domain: str, include: tuple[bytes, ...], sign: Callable[[bytes], bytes]
    ) -> None:
        self.sign = sign
        self.fields = [
            (b"v", b"1"),
            (b"a", algorithm),
            (b"c", b"relaxed/relaxed"),
            (b"d", domain.encode()),
            (b"i", b"@" + domain.encode()),
            (b"q", b"dns/txt"),
            (b"s", selector.encode()),
            (b"t", _STAMP),
            (b"h", b" : ".join(include)),
            (b"bh", _BODY_HASH),
            (b"b", b"0" * 60),  # dkimpy's trick: b= folds onto its own line, so filling it in moves no other tag
        ]
        self.unsigned = RE_BTAG.sub(rb"\1", fold(_tags(self.fields), namelen=_NAME_LENGTH))
        [(name, value)] = _RELAXED.canonicalize_headers([(b"DKIM-Signature", b" " + self.unsigned)])
        self.canonical = name + b":" + value.rstrip()  # the signature's own field, hashed last with no CRLF (3.7)
        # The final header folded once, its values as stand-ins of their length (no signature changes length).
        lengths = {b"t": len(_STAMP), b"bh": len(_BODY_HASH), b"b": len(base64.b64encode(sign(bytes(32))))}
        stand_ins = {tag: _FILL[tag] * length for tag, length in lengths.items()}
        folded = fold(
            _tags([(tag, stand_ins.get(tag, value)) for tag, value in self.fields]) + b"\r\n", namelen=_NAME_LENGTH
        )
        self.plan = _plan(folded)

    def header(self, signed: hashlib._Hash, stamp: bytes, body_hash: bytes) -> bytes:
        """The signed header field (CRLF-terminated): `signed` has hashed the signed header fields."""
        hasher = signed.copy()
        hasher.update(self.canonical.replace(b"t=" + _STAMP, b"t=" + stamp, 1).replace(_BODY_HASH, body_hash, 1))
        values = {b"\x01": stamp, b"\x02": body_hash, b"\x03": base64.b64encode(self.sign(hasher.digest()))}
        return b"DKIM-Signature: " + b"".join(
            piece if isinstance(piece, bytes) else values[piece[0]][piece[1] : piece[2]] for piece in self.plan
        )


def _plan(folded: bytes) -> list[bytes | tuple[bytes, int, int]]:
    """The folded header as literal pieces and (stand-in, start, end): the slices of each value to put there."""
    plan: list[bytes | tuple[bytes, int, int]] = []
    taken: dict[bytes, int] = {}
    for i, piece in enumerate(re.split(rb"([\x01-\x03]+)", folded)):
        if i % 2 == 0:
            plan.append(piece)
        else:
            key, start = piece[:1], taken.get(piece[:1], 0)
            plan.append((key, start, start + len(piece)))
            taken[key] = start + len(piece)
    return plan


def _tags(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"; ".join(b"=".join(field) for field in fields)


def _rsa_signer(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    """RSASSA-PKCS1-v1_5 over an already computed SHA-256 digest (RFC 6376 section 3.3.1), in OpenSSL."""
    return functools.partial(key.sign, padding=padding.PKCS1v15(), algorithm=Prehashed(hashes.SHA256()))
