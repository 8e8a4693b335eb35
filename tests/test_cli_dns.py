"""`newsletter dns`: the records it prints verify a message it signed, and name what the bounce domain needs."""

from __future__ import annotations

import re

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.cli import main


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("DATABASE_URL", "OUTBOX_DIR", "DKIM_KEY_FILE", "DKIM_ED25519_KEY_FILE", "DKIM_DOMAIN", "SMTP_URL",
                 "BOUNCE_ADDRESS", "INBOUND_URL", "UNSUBSCRIBE_ADDRESS", "SECRET_KEY"):  # fmt: skip
        monkeypatch.delenv(f"NEWSLETTER_{name}", raising=False)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "ed.pem").write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY_FILE", str(tmp_path / "dkim.pem"))
    monkeypatch.setenv("NEWSLETTER_DKIM_SELECTOR", "news2026")
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def zone(out: str) -> dict[tuple[str, str], str]:
    """(name, type) -> value of each record line, a TXT record's strings joined as a resolver joins them."""
    found = {}
    for line in out.splitlines():
        if line and not line.startswith(";"):
            name, kind, value = line.split("\t")
            rtype = kind.split()[-1]
            found[(name.rstrip("."), rtype)] = "".join(re.findall(r'"([^"]*)"', value)) if rtype == "TXT" else value
    return found


def test_the_printed_dkim_records_verify_a_message_the_send_signed(env, capsys, example_dir, tmp_path):
    env.setenv("NEWSLETTER_DKIM_ED25519_KEY_FILE", str(tmp_path / "ed.pem"))
    code, out, err = run(capsys, "dns", "--dir", str(example_dir))
    assert code == 0, err
    records = zone(out)
    rsa_name = "news2026._domainkey.improvement.example.org"
    ed_name = "news2026-ed25519._domainkey.improvement.example.org"
    assert records[(rsa_name, "TXT")].startswith("v=DKIM1; k=rsa; p=")
    assert records[(ed_name, "TXT")].startswith("v=DKIM1; k=ed25519; p=")
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', out))

    code, _, err = run(capsys, "send", "--dir", str(example_dir), "--test", "kim@example.org")
    assert code == 0, err
    [sent] = (example_dir / "outbox").glob("*.eml")

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        return records[(name.decode().rstrip("."), "TXT")].encode()

    data = sent.read_bytes()
    assert dkimpy.verify(data, dnsfunc=lookup)
    signatures = data.split(b"\r\n\r\n")[0].count(b"DKIM-Signature:")
    assert signatures == 2


def test_spf_dmarc_and_the_bounce_domains_mx(env, capsys, example_dir):
    env.setenv("NEWSLETTER_SMTP_URL", "smtp://user:secret@smtp.relay.example:587")
    env.setenv("NEWSLETTER_BOUNCE_ADDRESS", "bounces@news.improvement.example.org")
    env.setenv("NEWSLETTER_UNSUBSCRIBE_ADDRESS", "unsubscribe@news.improvement.example.org")
    env.setenv("NEWSLETTER_INBOUND_URL", "imaps://bounces:hunter2@mail.improvement.example.org/INBOX")
    code, out, err = run(capsys, "dns", "--dir", str(example_dir))
    assert code == 0, err
    records = zone(out)
    assert records[("improvement.example.org", "TXT")] == "v=spf1 a:smtp.relay.example ~all"
    assert records[("news.improvement.example.org", "TXT")] == "v=spf1 a:smtp.relay.example ~all"  # the envelope's
    assert records[("_dmarc.improvement.example.org", "TXT")] == (
        "v=DMARC1; p=none; rua=mailto:programme.office@improvement.example.org"
    )
    assert records[("news.improvement.example.org", "MX")] == "10 mail.improvement.example.org."
    assert "secret" not in out and "hunter2" not in out


def test_without_a_key_it_says_how_to_make_one_and_a_misaligned_domain_is_one_line(env, capsys, example_dir):
    env.delenv("NEWSLETTER_DKIM_KEY_FILE")
    code, out, _ = run(capsys, "dns", "--dir", str(example_dir))
    assert code == 0 and "openssl genpkey" in out and "_domainkey" not in out
    assert "NEWSLETTER_BOUNCE_ADDRESS is not set" in out

    env.setenv("NEWSLETTER_DKIM_KEY_FILE", str(example_dir.parent / "dkim.pem"))
    env.setenv("NEWSLETTER_DKIM_DOMAIN", "mailer.example.com")
    code, out, err = run(capsys, "dns", "--dir", str(example_dir))
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "does not align" in err


def test_a_report_address_on_another_domain_gets_its_authorisation_record(env, capsys, example_dir):
    yaml_path = example_dir / "newsletter.yaml"
    yaml_path.write_text(
        re.sub(r"(?m)^reply_to:.*$", "reply_to: reports@dmarc-reports.example.net", yaml_path.read_text())
    )
    code, out, err = run(capsys, "dns", "--dir", str(example_dir))
    assert code == 0, err
    assert zone(out)[("improvement.example.org._report._dmarc.dmarc-reports.example.net", "TXT")] == "v=DMARC1"


@pytest.mark.parametrize("password", ["s3cr#etQZ", "paQX/ssZQ", "pwQX?xyZQ", "aQXW@bZQW"])
def test_no_part_of_a_password_in_a_url_is_printed_as_a_host(env, capsys, example_dir, password):
    env.setenv("NEWSLETTER_SECRET_KEY", "dns-test-key-long-enough-for-real-mail")
    env.setenv("NEWSLETTER_BOUNCE_ADDRESS", "bounces@improvement.example.org")
    env.setenv("NEWSLETTER_SMTP_URL", f"smtp://news:{password}@relay.example.org:587")
    env.setenv("NEWSLETTER_INBOUND_URL", f"imaps://news:{password}@imap.example.org/INBOX")
    _code, out, err = run(capsys, "dns", "--dir", str(example_dir))
    for fragment in {
        password,
        *password.replace("#", " ").replace("/", " ").replace("?", " ").replace("@", " ").split(),
    }:
        assert fragment not in out + err
    assert "news." not in out  # the user name is not taken for a host either
