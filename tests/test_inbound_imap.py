"""Inbound mail through a real Dovecot IMAP server (STARTTLS, IMAPS, IDLE), and the end-to-end run of `newsletter inbound`."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path

import pytest
from conftest import free_port, import_members
from inbound_mail import arf, dsn, out_of_office, plain

from newsletter import subscribers
from newsletter.cli import main
from newsletter.inbound import PROCESSED, UNRECOGNISED, MailboxError, Options, open_mailbox, watch
from newsletter.store import open_store
from newsletter.subscribers import Status
from newsletter.tokens import Signer

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "news", "imap-test-password"
SECRET = "inbound-e2e-key, 32 characters or more"
BOUNCES = "bounces@improvement.example.org"
UNSUBSCRIBE = "unsubscribe@news.improvement.example.org"


@pytest.fixture(autouse=True)
def _dovecot_is_installed() -> None:
    """Fail, not skip, without it: a silent skip would hide the check (.ci/run installs Debian's package)."""
    if not Path(DOVECOT).exists():
        pytest.fail(f"{DOVECOT} is missing: apt-get install dovecot-imapd (.ci/run does)")


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    imaps_port: int | None
    cert: Path | None

    def url(self, scheme: str = "imap") -> str:
        port = self.imaps_port if scheme == "imaps" else self.imap_port
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}/INBOX"

    def client(self):
        """An IMAP client of the test's own (plain login over STARTTLS), to append and look."""
        import ssl

        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", self.imap_port, ssl=False, timeout=10)
        if self.cert:
            client.starttls(ssl.create_default_context(cafile=str(self.cert)))
        client.login(USER, PASSWORD)
        return client

    def append(self, *messages: bytes) -> None:
        client = self.client()
        for data in messages:
            client.append("INBOX", data)
        client.logout()

    def count(self, folder: str) -> int:
        client = self.client()
        try:
            return client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"] if client.folder_exists(folder) else 0
        finally:
            client.logout()


def _certificate(directory: Path) -> Path:
    """A throw-away self-signed certificate for 127.0.0.1 and localhost; the key beside it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return directory / "cert.pem"


def _users() -> tuple[str, str, pwd.struct_passwd]:
    """(internal user, login user, mail user): Dovecot's own users as root; this user for everything otherwise."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me
    return "dovecot", "dovenull", pwd.getpwnam("nobody")


def _config(root: Path, imap_port: int, imaps_port: int | None, cert: Path | None) -> str:
    internal, login, mail = _users()
    tls = (
        f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{root / 'key.pem'}\ndisable_plaintext_auth = yes\n"
        if cert
        else "ssl = no\ndisable_plaintext_auth = no\n"
    )
    imaps = (
        f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n    ssl = yes\n  }}\n"
        if imaps_port
        else ""
    )
    return (
        f"protocols = imap\nlisten = 127.0.0.1\nbase_dir = {root}/run\nstate_dir = {root}/state\n"
        f"log_path = {root}/dovecot.log\ndefault_internal_user = {internal}\ndefault_login_user = {login}\n"
        f"{tls}auth_mechanisms = plain login\n"
        f"passdb {{\n  driver = static\n  args = password={PASSWORD}\n}}\n"
        f"userdb {{\n  driver = static\n  args = uid={mail.pw_uid} gid={mail.pw_gid} home={root}/home/%u\n}}\n"
        f"mail_location = maildir:{root}/mail/%u\nfirst_valid_uid = {min(mail.pw_uid, 500)}\n"
        f"mail_uid = {mail.pw_uid}\nmail_gid = {mail.pw_gid}\n"
        f"service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n{imaps}}}\n"
    )


def _start(*, tls: bool):
    root = Path(tempfile.mkdtemp(prefix="dovecot-test-"))  # not under pytest's 0700 tmp: Dovecot's users must reach it
    root.chmod(0o755)
    _, _, mail = _users()
    for sub in ("mail", "home"):
        (root / sub).mkdir()
        os.chown(root / sub, mail.pw_uid, mail.pw_gid)
    cert = _certificate(root) if tls else None
    server = Dovecot(root, free_port(), free_port() if tls else None, cert)
    config = root / "dovecot.conf"
    config.write_text(_config(root, server.imap_port, server.imaps_port, cert))
    with (root / "stdout.log").open("wb") as out:
        process_ = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", server.imap_port), timeout=1).close()
            break
        except OSError:
            if process_.poll() is not None or time.monotonic() > deadline:
                process_.kill()
                logs = "".join(p.read_text() for p in (root / "stdout.log", root / "dovecot.log") if p.exists())
                pytest.fail(f"dovecot did not start: {logs}")
            time.sleep(0.05)
    return server, process_


def _stop(server: Dovecot, process_: subprocess.Popen) -> None:
    process_.terminate()
    try:
        process_.wait(10)
    except subprocess.TimeoutExpired:
        process_.kill()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def dovecot():
    """A real Dovecot on 127.0.0.1 with a throw-away config, TLS from a throw-away certificate, a Maildir per user."""
    server, process_ = _start(tls=True)
    yield server
    _stop(server, process_)


@pytest.fixture
def dovecot_without_tls():
    server, process_ = _start(tls=False)
    yield server
    _stop(server, process_)


def _context(server: Dovecot):
    import ssl

    return ssl.create_default_context(cafile=str(server.cert))


# the IMAP mailbox ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["imap", "imaps"])
def test_messages_are_read_over_tls_and_moved_to_processed_or_unrecognised(dovecot, scheme):
    dovecot.append(
        out_of_office(to="bounces+1@improvement.example.org", sender="kim@example.org"), b"Subject: hi\r\n\r\nhello\r\n"
    )
    with open_mailbox(dovecot.url(scheme), ssl_context=_context(dovecot)) as box:
        incoming = list(box.unhandled())
        assert len(incoming) == 2
        box.move(incoming[0].key, PROCESSED)
        box.move(incoming[1].key, UNRECOGNISED)
        assert list(box.unhandled()) == []
    assert (dovecot.count("INBOX"), dovecot.count(PROCESSED), dovecot.count(UNRECOGNISED)) == (0, 1, 1)


def test_an_untrusted_certificate_and_a_wrong_password_are_one_line(dovecot):
    with pytest.raises(MailboxError, match="certificate verify failed"), open_mailbox(dovecot.url("imaps")):
        pass
    wrong = dovecot.url().replace(PASSWORD, "wrong")
    with pytest.raises(MailboxError, match="user news"), open_mailbox(wrong, ssl_context=_context(dovecot)):
        pass


def test_imap_url_means_starttls_and_a_server_without_it_is_refused(dovecot_without_tls):
    with pytest.raises(MailboxError, match="does not offer STARTTLS"), open_mailbox(dovecot_without_tls.url()):
        pass


def test_watch_wakes_on_imap_idle_when_mail_arrives(dovecot, engine):
    jo = subscribers.add(engine, "jo@example.org", networks=["qa"], known_networks=["qa"])
    stop = threading.Event()
    lines: list[str] = []
    thread = threading.Thread(
        target=watch,
        args=(lambda: open_mailbox(dovecot.url(), ssl_context=_context(dovecot)), engine),
        kwargs={
            "signer": Signer(SECRET),
            "options": Options(bounce_address=BOUNCES),
            "stop": stop,
            "poll_seconds": 120,
            "log": lines.append,
        },
        daemon=True,
    )
    thread.start()
    try:
        time.sleep(0.5)  # in IDLE by now; without IDLE the next look would be two minutes away
        original = b"Message-ID: <20261127.1.aaaaaaaaaaaaaaaa@improvement.example.org>\r\n\r\n"
        dovecot.append(dsn(original, mail_from=f"bounces+{jo.id}@improvement.example.org", recipient=jo.email,
                           status="5.1.1", diagnostic="550 5.1.1 user unknown"))  # fmt: skip
        deadline = time.monotonic() + 30  # generous: a loaded machine is slow to log in, not slow to wake
        while subscribers.by_id(engine, jo.id).status is Status.ACTIVE:
            assert time.monotonic() < deadline, lines
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert "1 message: 1 bounce (1 hard)" in lines


# end to end: send an issue, read what comes back -------------------------------------------


@pytest.fixture
def env(monkeypatch, dovecot, smtp_server, tmp_path):
    for name in ("DATABASE_URL", "OUTBOX_DIR", "DKIM_KEY_FILE", "SMTP_POOL"):
        monkeypatch.delenv(f"NEWSLETTER_{name}", raising=False)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", BOUNCES)
    monkeypatch.setenv("NEWSLETTER_UNSUBSCRIBE_ADDRESS", UNSUBSCRIBE)
    monkeypatch.setenv("NEWSLETTER_INBOUND_URL", dovecot.url())  # imap:// with STARTTLS
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))  # the default context then trusts the throw-away certificate
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_end_to_end_bounces_complaint_and_unsubscribe_change_exactly_the_right_readers(
    env, capsys, example_dir, smtp_server, dovecot
):
    import_members(capsys, example_dir)
    code, out, err = run(capsys, "send", "--dir", str(example_dir))
    assert code == 0, err
    sent = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert len(sent) >= 6 and all(
        re.fullmatch(r"bounces\+\d+@improvement\.example\.org", m.mail_from) for m in sent.values()
    )
    hard, soft, complainer, leaver, forged_for, away = sorted(sent)[:6]

    def token(address: str) -> str:
        header = email.message_from_bytes(sent[address].data, policy=policy.default)["List-Unsubscribe"]
        found = re.search(r"/unsubscribe/([A-Za-z0-9_-]+)>", header).group(1)
        assert f"<mailto:unsubscribe+{found}@news.improvement.example.org>" in header  # the service reads it
        return found

    dovecot.append(
        dsn(sent[hard].data, mail_from=sent[hard].mail_from, recipient=hard, status="5.1.1", diagnostic="550 5.1.1 user unknown"),
        dsn(sent[soft].data, mail_from=sent[soft].mail_from, recipient=soft, status="4.2.2", diagnostic="452 4.2.2 mailbox full",
            action="delayed"),
        arf(sent[complainer].data),
        plain(to=f"unsubscribe+{token(leaver)}@news.improvement.example.org", sender=leaver, subject="unsubscribe"),
        plain(to=f"unsubscribe+{Signer('not-our-key').sign(1, forged_for)}@news.improvement.example.org", sender=forged_for,
              subject="unsubscribe"),
        b"\x00\x01\x02 this is not an email \xff",
        out_of_office(to=sent[away].mail_from, sender=away),
    )  # fmt: skip
    engine = open_store(f"sqlite:///{example_dir / 'newsletter.db'}")
    before = {s.email: s.status for s in subscribers.listing(engine)}

    code, out, err = run(capsys, "inbound", "--dir", str(example_dir))

    assert code == 0, err
    assert out.splitlines()[-1] == (
        "7 messages: 2 bounces (1 hard), 1 complaint, 1 unsubscribe, 1 auto-reply ignored, 1 refused, 1 unrecognised"
    )
    assert err.count("warning:") == 2 and "refused" in err and "unrecognised" in err
    after = {s.email: s.status for s in subscribers.listing(engine)}
    changed = {address: status for address, status in after.items() if before[address] != status}
    assert changed == {hard: Status.BOUNCED, complainer: Status.COMPLAINED, leaver: Status.UNSUBSCRIBED}
    assert (dovecot.count("INBOX"), dovecot.count(PROCESSED), dovecot.count(UNRECOGNISED)) == (0, 5, 2)

    code, out, _ = run(capsys, "inbound", "--dir", str(example_dir))
    assert code == 0 and out.splitlines()[-1] == "0 messages"
    dovecot.append(dsn(sent[soft].data, mail_from=sent[soft].mail_from, recipient=soft, status="4.2.2",
                       diagnostic="452 4.2.2 mailbox full", action="delayed").replace(b"Message-ID: <", b"Message-ID: <x", 1))  # fmt: skip
    code, out, _ = run(capsys, "inbound", "--dir", str(example_dir))
    assert out.splitlines()[-1] == "1 message: 1 bounce (0 hard)"
    assert {s.email: s.status for s in subscribers.listing(engine)} == after  # one more soft bounce, on the same day

    code, out, _ = run(capsys, "bounces", "--dir", str(example_dir))
    assert code == 0 and out.count(" soft ") == 2 and out.count(" hard ") == 1 and out.count(" complaint ") == 1
    assert "550 5.1.1 user unknown" in out and "4 bounce(s) and complaint(s)" in out

    code, out, _ = run(capsys, "status", "--dir", str(example_dir))
    header, *rows = [line.split() for line in out.splitlines()[1:]]
    assert code == 0 and header[-3:] == ["hard", "soft", "complaint"]
    table = {row[0]: [int(n) for n in row[-3:]] for row in rows}
    assert table["all"] == [1, 2, 1]
    assert sum(counts[0] for network, counts in table.items() if network != "all") >= 1  # by the reader's networks
    engine.dispose()
