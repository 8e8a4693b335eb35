"""What `newsletter send` builds from the settings: the unsubscribe mailto, DKIM alignment, the unsigned warning."""

from __future__ import annotations

import email
from email import policy

import pytest
from conftest import import_members
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.cli import main
from newsletter.cli.wiring import aligned, organisational_domain

UNSUBSCRIBE = "unsubscribe@news.improvement.example.org"


@pytest.fixture
def env(monkeypatch, smtp_server):
    """A real SMTP relay and a kept key; no other NEWSLETTER_* setting from the machine running the tests."""
    for name in ("DATABASE_URL", "OUTBOX_DIR", "DKIM_KEY_FILE", "DKIM_DOMAIN", "BOUNCE_ADDRESS", "SMTP_POOL",
                 "INBOUND_URL", "UNSUBSCRIBE_ADDRESS"):  # fmt: skip
        monkeypatch.delenv(f"NEWSLETTER_{name}", raising=False)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "wiring-test-key-of-at-least-32-characters")
    return monkeypatch


@pytest.fixture
def dkim_file(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def send(capsys, example_dir) -> tuple[int, str, str]:
    import_members(capsys, example_dir)
    return run(capsys, "send", "--dir", str(example_dir))


def unsubscribe_header(message) -> str:
    return email.message_from_bytes(message.data, policy=policy.default)["List-Unsubscribe"]


def test_without_an_inbound_mailbox_list_unsubscribe_is_the_https_link_alone(env, capsys, example_dir, smtp_server):
    code, _, err = send(capsys, example_dir)
    assert code == 0, err
    headers = {unsubscribe_header(m) for m in smtp_server.messages}
    assert headers and all(h.startswith("<https://") and "mailto:" not in h for h in headers)


def test_the_unsubscribe_address_goes_into_every_message_when_the_mailbox_is_read(
    env, capsys, example_dir, smtp_server, tmp_path
):
    env.setenv("NEWSLETTER_INBOUND_URL", f"maildir://{tmp_path / 'Maildir'}")
    env.setenv("NEWSLETTER_UNSUBSCRIBE_ADDRESS", UNSUBSCRIBE)
    code, _, err = send(capsys, example_dir)
    assert code == 0, err
    assert smtp_server.messages and all(
        "<mailto:unsubscribe+" in unsubscribe_header(m) and "@news.improvement.example.org>" in unsubscribe_header(m)
        for m in smtp_server.messages
    )


def test_an_unsubscribe_address_nobody_reads_is_refused_before_anything_is_sent(env, capsys, example_dir, smtp_server):
    env.setenv("NEWSLETTER_UNSUBSCRIBE_ADDRESS", UNSUBSCRIBE)
    code, _, err = send(capsys, example_dir)
    assert code == 1 and smtp_server.messages == []
    assert err.strip().splitlines() == [
        "error: NEWSLETTER_UNSUBSCRIBE_ADDRESS is set but NEWSLETTER_INBOUND_URL is not: nothing would read its mail"
    ]


def test_sending_over_smtp_without_dkim_warns_once_per_send(env, capsys, example_dir, smtp_server):
    code, _, err = send(capsys, example_dir)
    assert code == 0 and len(smtp_server.messages) > 1
    assert err.count("without DKIM") == 1 and "NEWSLETTER_DKIM_KEY_FILE" in err


def test_a_signed_send_and_an_outbox_send_do_not_warn(env, capsys, example_dir, dkim_file):
    env.setenv("NEWSLETTER_DKIM_KEY_FILE", str(dkim_file))
    env.setenv("NEWSLETTER_DKIM_SELECTOR", "news2026")
    env.setenv("NEWSLETTER_DKIM_DOMAIN", "News.Improvement.Example.ORG")  # a subdomain aligns (relaxed)
    code, _, err = send(capsys, example_dir)
    assert code == 0 and "DKIM" not in err
    env.delenv("NEWSLETTER_DKIM_KEY_FILE")
    env.delenv("NEWSLETTER_SMTP_URL")
    code, _, err = run(capsys, "send", "--dir", str(example_dir), "--date", "2026-11-20")  # 11-27's send is done
    assert code == 0 and "DKIM" not in err, err


def test_a_dkim_domain_that_does_not_align_with_from_is_refused_before_anything_is_sent(
    env, capsys, example_dir, smtp_server, dkim_file
):
    env.setenv("NEWSLETTER_DKIM_KEY_FILE", str(dkim_file))
    env.setenv("NEWSLETTER_DKIM_SELECTOR", "news2026")
    env.setenv("NEWSLETTER_DKIM_DOMAIN", "mailer.example.com")
    code, _, err = send(capsys, example_dir)
    assert code == 1 and smtp_server.messages == []
    [line] = err.strip().splitlines()
    assert line.startswith("error: NEWSLETTER_DKIM_DOMAIN mailer.example.com does not align with the From domain")


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("news.example.org", "example.org", True),
        ("a.b.example.org.", "EXAMPLE.org", True),
        ("example.org", "example.com", False),
        ("example-mail.org", "example.org", False),
    ],
)
def test_relaxed_alignment_is_the_same_organisational_domain(one, other, same):
    assert aligned(one, other) is same
    assert organisational_domain("news.improvement.example.org") == "example.org"
