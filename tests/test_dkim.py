"""DKIM: messages signed with a key made here verify (dkimpy) on the bytes a real SMTP server received."""

from __future__ import annotations

import base64
import math
import random
import re

import dkim as dkimpy
import pytest

from newsletter.dkim import DKIMKey
from newsletter.errors import ConfigError
from newsletter.message import Composer, notice
from newsletter.tokens import Signer
from test_message import composer, deliver, example, newsletter  # noqa: F401  (fixtures)

SELECTOR, DOMAIN = "news2026", "improvement.example.org"


def _probably_prime(n: int, rng: random.Random) -> bool:
    if n % 2 == 0 or any(n % p == 0 for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if _probably_prime(candidate, rng):
            return candidate


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    length = bytes([size]) if size < 128 else bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def make_rsa_key(bits: int = 1024, seed: int = 2026) -> tuple[bytes, bytes]:
    """(PKCS#1 PEM private key, DNS TXT record) for a fresh RSA key: no openssl or cryptography needed."""
    rng = random.Random(seed)
    e = 65537
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
        phi = (p - 1) * (q - 1)
        if p != q and math.gcd(e, phi) == 1:
            break
    n, d = p * q, pow(e, -1, phi)
    private = _der(0x30, b"".join(_integer(x) for x in (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))))
    body = base64.encodebytes(private).decode().replace("\n", "")
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    pem += "\n-----END RSA PRIVATE KEY-----\n"
    public = _der(0x30, _integer(n) + _integer(e))
    return pem.encode(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    return make_rsa_key()


@pytest.fixture
def key(rsa_key, tmp_path) -> DKIMKey:
    path = tmp_path / "dkim.pem"
    path.write_bytes(rsa_key[0])
    return DKIMKey.load(path, SELECTOR, DOMAIN)


def dns(record: bytes):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def signed_tags(data: bytes) -> dict[str, str]:
    header = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", data, flags=re.MULTILINE | re.DOTALL).group(1)
    flat = re.sub(rb"\s+", b"", header).decode()
    return dict(part.split("=", 1) for part in flat.split(";") if part)


def test_signed_message_verifies_on_the_received_bytes(smtp_server, newsletter, key, rsa_key):  # noqa: F811
    message = composer(newsletter, dkim=key).message(subscriber_id=5, email="jo@example.org", name="Jo Bloggs")
    [data] = deliver(smtp_server, message)
    assert data.startswith(b"DKIM-Signature:")
    assert dkimpy.verify(data, dnsfunc=dns(rsa_key[1]))

    tags = signed_tags(data)
    assert (tags["d"], tags["s"], tags["a"], tags["c"]) == (DOMAIN, SELECTOR, "rsa-sha256", "relaxed/relaxed")
    signed = set(tags["h"].lower().split(":"))
    required = {"from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type"}
    assert required <= signed


@pytest.mark.parametrize(
    "change",
    [
        lambda d: re.sub(rb"/unsubscribe/[A-Za-z0-9_-]+>", b"/unsubscribe/" + b"A" * 38 + b">", d),  # someone else's link
        lambda d: d.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
        lambda d: d.replace(b"Subject: ", b"Subject: Re: ", 1),
        lambda d: d.replace(b"Gr=C3=BC=C3=9Fe", b"Hello"),  # the body
        lambda d: d.replace(b"\r\nFrom: ", b"\r\nFrom: Attacker <a@evil.example>\r\nFrom: ", 1),  # a second From (oversigned)
    ],
)
def test_any_change_to_a_signed_header_or_the_body_breaks_the_signature(smtp_server, newsletter, key, rsa_key, change):  # noqa: F811
    [data] = deliver(smtp_server, composer(newsletter, dkim=key).message(subscriber_id=5, email="jo@example.org", name="Jo"))
    changed = change(data)
    assert changed != data
    assert not dkimpy.verify(changed, dnsfunc=dns(rsa_key[1]))


def test_a_different_key_in_dns_fails(newsletter, key):  # noqa: F811
    other = make_rsa_key(seed=7)[1]
    message = composer(newsletter, dkim=key).message(subscriber_id=5, email="jo@example.org", name="Jo")
    assert not dkimpy.verify(message.data, dnsfunc=dns(other))


def test_unsigned_without_a_key(newsletter):  # noqa: F811
    message = composer(newsletter).message(subscriber_id=5, email="jo@example.org", name="Jo")
    assert b"DKIM-Signature" not in message.data
    assert not notice(newsletter, to="ed@example.org", subject="s", text="t").data.startswith(b"DKIM")


def test_bad_key_files_and_names_are_config_errors(tmp_path, rsa_key):
    with pytest.raises(ConfigError, match="cannot read the DKIM key"):
        DKIMKey.load(tmp_path / "missing.pem", SELECTOR, DOMAIN)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM RSA private key"):
        DKIMKey.load(tmp_path / "junk.pem", SELECTOR, DOMAIN)
    with pytest.raises(ConfigError, match="selector"):
        DKIMKey("bad selector\r\n", DOMAIN, rsa_key[0])


def test_the_real_rendered_example_verifies(smtp_server, example, key, rsa_key):  # noqa: F811
    newsletter, issue, content = example  # noqa: F811
    message = Composer(newsletter, content, issue_date=issue.date, signer=Signer("k"), dkim=key).message(
        subscriber_id=1, email="jo@example.org", name="Tomasz Wójcik"
    )
    [data] = deliver(smtp_server, message)
    assert dkimpy.verify(data, dnsfunc=dns(rsa_key[1]))
