"""DKIM: messages signed with keys made here verify, on the bytes a real SMTP relay received, with dkimpy
and with independent verifiers (OpenDKIM's opendkim-testmsg, Perl's Mail::DKIM) looking the keys up in DNS."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from email.utils import format_datetime
from pathlib import Path

import dkim as dkimpy
import pytest
from conftest import RecordingHandler, SMTPServer, free_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from test_message import composer, deliver, example, newsletter  # noqa: F401  (fixtures)

from newsletter.dkim import DKIMKey
from newsletter.errors import ConfigError
from newsletter.message import OVERSIGNED, SIGNED_HEADERS, Composer, notice
from newsletter.tokens import Signer

SELECTOR, DOMAIN = "news2026", "improvement.example.org"


def make_rsa_key(bits: int = 2048) -> tuple[bytes, bytes]:
    """(PKCS#1 PEM private key, DNS TXT record) for a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def short_rsa_key() -> bytes:
    """A 511-bit RSA key (cryptography refuses to make one): from two known primes."""
    p, q, e = 2**255 - 19, 2**256 - 189, 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), public
    )
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    return make_rsa_key()


@pytest.fixture
def key(rsa_key, tmp_path) -> DKIMKey:
    path = tmp_path / "dkim.pem"
    path.write_bytes(rsa_key[0])
    return DKIMKey.load(path, SELECTOR, DOMAIN)


@pytest.fixture
def both(rsa_key, tmp_path) -> DKIMKey:
    """The RSA key and an Ed25519 key beside it, loaded from files as the CLI does."""
    (tmp_path / "rsa.pem").write_bytes(rsa_key[0])
    ed = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ed25519.pem").write_bytes(
        ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return DKIMKey.load(tmp_path / "rsa.pem", SELECTOR, DOMAIN, ed25519=tmp_path / "ed25519.pem")


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
    required = {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
    }
    assert required <= signed


@pytest.mark.parametrize(
    "change",
    [
        lambda d: re.sub(
            rb"/unsubscribe/[A-Za-z0-9_-]+>", b"/unsubscribe/" + b"A" * 38 + b">", d
        ),  # someone else's link
        lambda d: d.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
        lambda d: d.replace(b"Subject: ", b"Subject: Re: ", 1),
        lambda d: d.replace(b"Gr=C3=BC=C3=9Fe", b"Hello"),  # the body
        lambda d: d.replace(
            b"\r\nFrom: ", b"\r\nFrom: Attacker <a@evil.example>\r\nFrom: ", 1
        ),  # a second From (oversigned)
    ],
)
def test_any_change_to_a_signed_header_or_the_body_breaks_the_signature(smtp_server, newsletter, key, rsa_key, change):  # noqa: F811
    [data] = deliver(
        smtp_server, composer(newsletter, dkim=key).message(subscriber_id=5, email="jo@example.org", name="Jo")
    )
    changed = change(data)
    assert changed != data
    assert not dkimpy.verify(changed, dnsfunc=dns(rsa_key[1]))


def test_a_different_key_in_dns_fails(newsletter, key):  # noqa: F811
    other = make_rsa_key(1024)[1]
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


def test_rsa_and_ed25519_records_name_each_key(both):
    records = both.dns_records()
    assert list(records) == [f"{SELECTOR}._domainkey.{DOMAIN}", f"{SELECTOR}-ed25519._domainkey.{DOMAIN}"]
    rsa_record, ed_record = records.values()
    assert rsa_record.startswith("v=DKIM1; k=rsa; p=MII")
    assert ed_record.startswith("v=DKIM1; k=ed25519; p=") and len(base64.b64decode(ed_record.split("p=")[1])) == 32


def test_bad_ed25519_keys_are_config_errors(tmp_path, rsa_key):
    (tmp_path / "rsa.pem").write_bytes(rsa_key[0])
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(ConfigError, match="not an Ed25519 private key"):
        DKIMKey.load(tmp_path / "rsa.pem", SELECTOR, DOMAIN, ed25519=tmp_path / "junk")
    with pytest.raises(ConfigError, match=r"not an Ed25519 private key .it is RSAPrivateKey"):
        DKIMKey.load(tmp_path / "rsa.pem", SELECTOR, DOMAIN, ed25519=tmp_path / "rsa.pem")
    with pytest.raises(ConfigError, match="RSA key of 511 bits: receivers need at least 1024"):
        DKIMKey(SELECTOR, DOMAIN, short_rsa_key())
    seed = base64.b64encode(os.urandom(32))  # dkimpy's dknewkey writes the raw seed in base64
    (tmp_path / "seed").write_bytes(seed + b"\n")
    assert DKIMKey.load(tmp_path / "rsa.pem", SELECTOR, DOMAIN, ed25519=tmp_path / "seed").ed25519_key


# independent verifiers, on the message as a relay received it ----------------------------------

SANDBOX = Path(__file__).with_name("dns_sandbox.py")
MAIL_DKIM = r"""
use Mail::DKIM::Verifier;
my $v = Mail::DKIM::Verifier->new;
while (<STDIN>) { s/\r?\n\z/\r\n/; $v->PRINT($_); }
$v->CLOSE;
print $_->algorithm, " ", $_->result, "\n" for $v->signatures;
"""


class Relay(RecordingHandler):
    """A relay's first hop: like any MTA it adds its trace headers on top of the bytes it received."""

    async def handle_DATA(self, server, session, envelope):
        stamp = format_datetime(dt.datetime.now(dt.UTC))
        trace = f"Received: from {session.host_name} ([{session.peer[0]}])\r\n\tby relay.test with ESMTP; {stamp}\r\nX-Peer: {session.peer[0]}\r\n"
        envelope.original_content = trace.encode() + envelope.original_content
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def relay():
    from aiosmtpd.controller import Controller

    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), decode_data=False)
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


def tool(name: str, package: str) -> str:
    """The verifier's path; missing, the test fails (never skips): CI installs the Debian package."""
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not found:
        pytest.fail(f"{name} is not installed: apt-get install {package}")
    return found


def in_dns(data: bytes, records: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    """`command` reading `data`, with `records` as the whole of DNS (tests/dns_sandbox.py)."""
    sandbox = [
        tool("unshare", "util-linux"),
        "--net",
        "--mount",
        "--",
        sys.executable,
        str(SANDBOX),
        json.dumps(records),
    ]
    result = subprocess.run([*sandbox, *command], input=data, capture_output=True, timeout=60, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def opendkim(data: bytes, records: dict[str, str]) -> bool:
    """OpenDKIM's verdict: exit status 0 and nothing said is a good signature."""
    result = in_dns(data, records, tool("opendkim-testmsg", "opendkim-tools"))
    assert result.returncode == 0 or "signature" in result.stderr.lower(), (
        result.stderr
    )  # a verdict, not a failure to run
    return result.returncode == 0 and not result.stderr


def mail_dkim(data: bytes, records: dict[str, str]) -> dict[str, str]:
    """Mail::DKIM's result for each signature, by algorithm (this version knows only RSA)."""
    tool("perl", "perl")
    result = in_dns(data, records, "perl", "-e", MAIL_DKIM)
    assert result.returncode == 0 and not result.stderr, (
        result.stderr or "Mail::DKIM: apt-get install libmail-dkim-perl"
    )
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def only(data: bytes, algorithm: str) -> bytes:
    """The message with every DKIM-Signature but the `algorithm` one removed, so a verifier judges that one alone."""
    signatures = re.findall(rb"^DKIM-Signature:.*?\r\n(?![ \t])", data, flags=re.MULTILINE | re.DOTALL)
    assert len(signatures) == 2
    for signature in signatures:
        if f"a={algorithm};".encode() not in re.sub(rb"\s+", b"", signature):
            data = data.replace(signature, b"", 1)
    return data


def relayed(relay, message) -> bytes:
    [data] = deliver(relay, message)
    assert data.startswith(b"Received: from ") and data.index(b"X-Peer:") < data.index(b"DKIM-Signature:")
    return data


def test_rsa_and_ed25519_signatures_verify_independently_on_the_relayed_message(relay, newsletter, both):  # noqa: F811
    data = relayed(
        relay, composer(newsletter, dkim=both).message(subscriber_id=5, email="jo@example.org", name="Jo Bloggs")
    )
    records = both.dns_records()
    assert dkimpy.verify(data, dnsfunc=dns(records[f"{SELECTOR}._domainkey.{DOMAIN}"].encode()))  # the topmost: RSA
    assert mail_dkim(data, records) == {"rsa-sha256": "pass", "ed25519-sha256": "invalid"}  # Ed25519 unknown to it
    assert opendkim(only(data, "rsa-sha256"), records)
    assert opendkim(only(data, "ed25519-sha256"), records)


def test_a_changed_body_or_header_fails_the_independent_verifiers(relay, newsletter, both):  # noqa: F811
    data = relayed(relay, composer(newsletter, dkim=both).message(subscriber_id=5, email="jo@example.org", name="Jo"))
    records = both.dns_records()
    body = data.replace(b"Gr=C3=BC=C3=9Fe", b"Hello")
    subject = data.replace(b"Subject: ", b"Subject: Re: ", 1)
    assert mail_dkim(body, records)["rsa-sha256"] == "fail"
    for algorithm in ("rsa-sha256", "ed25519-sha256"):
        assert not opendkim(only(body, algorithm), records)
        assert not opendkim(only(subject, algorithm), records)
    other = DKIMKey(SELECTOR, DOMAIN, make_rsa_key(1024)[0]).dns_records()  # the wrong key published
    assert not opendkim(only(data, "rsa-sha256"), other)


def test_the_real_rendered_example_verifies_independently(relay, example, both):  # noqa: F811
    news, issue, content = example
    message = Composer(news, content, issue_date=issue.date, signer=Signer("k"), dkim=both).message(
        subscriber_id=1, email="jo@example.org", name="Tomasz Wójcik"
    )
    data = relayed(relay, message)
    records = both.dns_records()
    assert mail_dkim(data, records)["rsa-sha256"] == "pass"
    assert opendkim(only(data, "rsa-sha256"), records)
    assert opendkim(only(data, "ed25519-sha256"), records)


@pytest.mark.parametrize(
    "name", ["Reader", "Zoë Ünïcode, with a name long enough to be folded " * 3, None, 'Quoted "x", y']
)
def test_the_signature_is_byte_for_byte_what_dkimpy_makes(newsletter, rsa_key, name, monkeypatch):  # noqa: F811
    """Our header path (fields canonicalised from the head as message.py writes it) gives dkimpy's very bytes."""
    monkeypatch.setattr("time.time", lambda: 1_767_000_000.5)  # both stamp t= from the clock: the same second
    key = DKIMKey(SELECTOR, DOMAIN, rsa_key[0])
    data = composer(newsletter, dkim=key).message(subscriber_id=7, email="seven@example.org", name=name).data
    start = data.index(b"\r\nFrom: ") + 2
    theirs = dkimpy.sign(
        data[start:],
        SELECTOR.encode(),
        DOMAIN.encode(),
        rsa_key[0],
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=SIGNED_HEADERS + OVERSIGNED,
    )
    assert data[:start] == theirs
