"""Inbound mail on real bounce messages (a real Postfix's and flufl.bounce's vendor samples), a real store and Maildir."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from inbound_mail import arf, out_of_office, plain

from newsletter import subscribers
from newsletter.errors import ConfigError
from newsletter.inbound import (
    PROCESSED,
    UNRECOGNISED,
    BounceKind,
    Kind,
    MaildirMailbox,
    MemoryMailbox,
    Options,
    bounce_counts,
    classify,
    open_mailbox,
    process,
)
from newsletter.inbound import bounces as kept
from newsletter.store import metadata
from newsletter.subscribers import Status
from newsletter.tokens import Signer

FIXTURES = Path(__file__).parent / "fixtures" / "inbound"
SECRET = "fixture-secret"  # what the Postfix fixtures' originals were signed with
BOUNCES = "bounces@example.net"
UNSUBSCRIBE = "unsubscribe@news.improvement.example.org"
OPTIONS = Options(bounce_address=BOUNCES, unsubscribe_address=UNSUBSCRIBE)
ISSUE = dt.date(2026, 11, 27)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# classify -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subscriber_id", "email", "hard", "status"),
    [
        ("postfix-user-unknown.eml", 2, "nosuchuser@example.net", True, "5.1.1"),
        ("postfix-mailbox-full.eml", 3, "mailboxfull@example.net", False, "5.2.2"),
        ("postfix-delayed.eml", 4, "reader@deferred.example.com", False, "4.4.1"),
    ],
)
def test_a_real_postfix_dsn_names_the_subscriber_by_verp_and_message_id(name, subscriber_id, email, hard, status):
    found = classify(fixture(name), bounce_address=BOUNCES)
    assert found.kind is Kind.BOUNCE
    assert (found.verp_id, found.message_id_id, found.issue_date) == (subscriber_id, subscriber_id, ISSUE)
    [failure] = found.failures
    assert (failure.email, failure.hard, failure.status) == (email, hard, status)
    assert failure.diagnostic


@pytest.mark.parametrize(
    ("name", "email", "hard"),
    [
        ("flufl/exchange.eml", "userx@example.COM", True),
        ("flufl/gmail.eml", "userx@example.com", True),
        ("flufl/yahoo.eml", "userx@example.com", False),  # "(#4.4.1) not going to try again": not the address's fault
        ("flufl/postfix.eml", "xxxxx@local.ie", True),
        ("flufl/exim.eml", "userx@its.example.nl", True),
        ("flufl/qmail.eml", "userx@example.de", True),
        ("flufl/dsn-delayed.eml", "userx@example.cz", False),
    ],
)
def test_vendor_bounces_are_found_with_the_failed_address(name, email, hard):
    found = classify(fixture(name), bounce_address=BOUNCES)
    assert found.kind is Kind.BOUNCE and found.verp_id is None
    assert [(f.email, f.hard) for f in found.failures] == [(email, hard)]


def test_auto_replies_are_told_from_bounces_and_everything_else_is_unrecognised():
    to = "bounces+5@example.net"
    assert classify(out_of_office(to=to, sender="kim@example.org")).kind is Kind.AUTO_REPLY
    for headers in (
        {"X_Autoreply": "yes"},
        {"Precedence": "auto_reply"},
        {"X_MS_Exchange_Inbox_Rules_Loop": "kim@example.org"},
    ):
        assert (
            classify(plain(to=to, sender="kim@example.org", subject="Re: your email", **headers)).kind
            is Kind.AUTO_REPLY
        )
    assert (
        classify(plain(to=to, sender="kim@example.org", subject="Out of Office: back on Monday")).kind
        is Kind.AUTO_REPLY
    )
    assert (
        classify(plain(to=to, sender="kim@example.org", subject="Re: update", Auto_Submitted="no")).kind
        is Kind.UNRECOGNISED
    )
    assert classify(plain(to=to, sender="kim@example.org", subject="Thanks for the update!")).kind is Kind.UNRECOGNISED
    for junk in (b"", b"\x00\xff\xfe garbage without any header", b"\r\n\r\n"):
        found = classify(junk)
        assert found.kind is Kind.UNRECOGNISED and found.key.startswith("sha256:")


# process, on a real store ----------------------------------------------------------------------


@pytest.fixture
def readers(engine) -> list[subscribers.Subscriber]:
    """Subscribers 1-5; 2, 3 and 4 are the recipients of the Postfix fixtures."""
    emails = [
        "jo@example.org",
        "nosuchuser@example.net",
        "mailboxfull@example.net",
        "reader@deferred.example.com",
        "kim@example.org",
    ]
    return [subscribers.add(engine, e, networks=["qa-leads"], known_networks=["qa-leads"]) for e in emails]


def statuses(engine) -> dict[str, Status]:
    return {s.email: s.status for s in subscribers.listing(engine)}


def test_process_applies_bounces_complaints_and_unsubscribes_once_and_moves_every_message(engine, readers):
    signer = Signer(SECRET)
    jo, kim = readers[0], readers[4]
    original = b"Message-ID: <20261127.1.aaaaaaaaaaaaaaaa@improvement.example.org>\r\nTo: jo@example.org\r\n\r\nhi\r\n"
    box = MemoryMailbox(
        [
            fixture("postfix-user-unknown.eml"),
            fixture("postfix-mailbox-full.eml"),
            fixture("flufl/gmail.eml"),  # userx@example.com: nobody here
            arf(original),
            plain(
                to=f"unsubscribe+{signer.sign(kim.id, kim.email)}@news.improvement.example.org",
                sender=kim.email,
                subject="Unsubscribe",
            ),
            plain(
                to=f"unsubscribe+{Signer('forged').sign(jo.id, jo.email)}@news.improvement.example.org",
                sender="x@example.org",
                subject="x",
            ),
            out_of_office(to="bounces+5@example.net", sender=kim.email),
            b"\xff\xfe not mail",
        ]
    )

    report = process(box, engine, signer=signer, options=OPTIONS)

    assert (
        report.summary()
        == "8 messages: 3 bounces (2 hard), 1 complaint, 1 unsubscribe, 1 auto-reply ignored, 1 refused, 1 unrecognised"
    )
    assert statuses(engine) == {
        "jo@example.org": Status.COMPLAINED,
        "nosuchuser@example.net": Status.BOUNCED,
        "mailboxfull@example.net": Status.ACTIVE,  # one soft bounce of three
        "reader@deferred.example.com": Status.ACTIVE,
        "kim@example.org": Status.UNSUBSCRIBED,
    }
    assert not box.inbox and len(box.folders[PROCESSED]) == 6 and len(box.folders[UNRECOGNISED]) == 2
    assert any("userx@example.com" in line and "nothing changed" in line for line in report.problems)
    assert any("refused" in line for line in report.problems)
    assert [(b.email, b.kind, b.status, b.issue_date) for b in kept.listing(engine)] == [
        ("nosuchuser@example.net", BounceKind.HARD, "5.1.1", ISSUE),
        ("mailboxfull@example.net", BounceKind.SOFT, "5.2.2", ISSUE),
        ("jo@example.org", BounceKind.COMPLAINT, None, ISSUE),
    ]
    assert bounce_counts(engine, ISSUE)["all"] == {BounceKind.HARD: 1, BounceKind.SOFT: 1, BounceKind.COMPLAINT: 1}
    assert bounce_counts(engine, ISSUE)["qa-leads"][BounceKind.HARD] == 1

    for data in box.folders[PROCESSED]:  # the same messages again
        box.deliver(data)
    again = process(box, engine, signer=signer, options=OPTIONS)
    assert again.summary() == "6 messages: 1 auto-reply ignored, 5 already handled"
    assert len(list(kept.listing(engine))) == 3


def test_soft_bounces_on_three_days_within_a_week_mark_the_address_bounced(engine, readers):
    full = readers[2]
    with engine.begin() as conn:
        for days_ago in (9, 3, 3, 1):  # the first is outside the window; two on one day count once
            when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
            kept.keep(
                conn, kind=BounceKind.SOFT, email=full.email, when=when, key=f"<old{days_ago}>", subscriber_id=full.id
            )
    box = MemoryMailbox([fixture("postfix-mailbox-full.eml")])
    assert process(box, engine, signer=Signer(SECRET), options=OPTIONS).changes == [
        "mailboxfull@example.net: now bounced: soft bounces on 3 days within 7: 5.2.2 input/output error"
    ]
    assert subscribers.by_id(engine, full.id).status is Status.BOUNCED


def test_a_bounce_for_a_removed_subscriber_changes_nothing_and_is_reported(engine, readers):
    subscribers.remove(engine, "nosuchuser@example.net")
    before = statuses(engine)
    report = process(
        MemoryMailbox([fixture("postfix-user-unknown.eml")]), engine, signer=Signer(SECRET), options=OPTIONS
    )
    assert statuses(engine) == before and not list(kept.listing(engine))
    assert report.problems == [
        f"{classify(fixture('postfix-user-unknown.eml')).key}: bounce for no known subscriber (VERP id 2): nothing changed"
    ]


def test_the_unsubscribe_token_may_come_in_the_subject(engine, readers):
    kim = readers[4]
    token = Signer(SECRET).sign(kim.id, kim.email)
    box = MemoryMailbox([plain(to=UNSUBSCRIBE, sender=kim.email, subject=f"unsubscribe {token}")])
    assert (
        process(box, engine, signer=Signer(SECRET), options=OPTIONS)
        .changes[0]
        .startswith("kim@example.org: now unsubscribed")
    )


# the Maildir and the URL ----------------------------------------------------------------------


def test_a_real_maildir_is_read_and_each_message_moved_to_a_maildir_plus_plus_folder(engine, readers, tmp_path):
    import mailbox

    root = tmp_path / "Maildir"
    md = mailbox.Maildir(root, create=True)
    md.add(fixture("postfix-user-unknown.eml"))
    md.add(b"no headers at all")

    with open_mailbox(f"maildir://{root}") as box:
        report = process(box, engine, signer=Signer(SECRET), options=OPTIONS)
    assert report.summary() == "2 messages: 1 bounce (1 hard), 1 unrecognised"
    assert len(md) == 0
    assert len(md.get_folder(PROCESSED)) == 1 and len(md.get_folder(UNRECOGNISED)) == 1
    assert (root / ".Processed" / "cur").is_dir() or (root / ".Processed" / "new").is_dir()
    with MaildirMailbox(root) as box:
        assert list(box.unhandled()) == []


@pytest.mark.parametrize("url", ["pop3://u:p@host/", "imaps://host/INBOX", "imap://u:p@host:port/", "maildir://"])
def test_a_bad_inbound_url_is_one_line(url):
    with pytest.raises(ConfigError, match="inbound URL"):
        open_mailbox(url)


@pytest.mark.parametrize("special", ["#", "@", "/", "?"])
@pytest.mark.parametrize("scheme", ["imaps", "imap", "pop3"])
def test_a_password_with_a_special_character_is_never_printed_in_part(scheme, special):
    password = f"Kq7v{special}Zp9w"
    url = f"{scheme}://news:{password}@mail.example.org:port/INBOX"  # a bad port, so that every URL is refused
    with pytest.raises(ConfigError) as caught:
        open_mailbox(url)
    said = str(caught.value)
    assert "Kq7v" not in said and "Zp9w" not in said and "\n" not in said
    assert f"{scheme}://***@mail.example.org" in said
    if scheme != "pop3" and special != "@":
        assert "percent-encode" in said and "%23" in said


@pytest.mark.parametrize("special", ["#", "/", "?"])
def test_a_password_with_a_special_character_must_be_percent_encoded(special):
    password = f"Kq7v{special}Zp9w"
    with pytest.raises(ConfigError, match="percent-encode") as caught:
        open_mailbox(f"imaps://news:{password}@mail.example.org/INBOX")
    assert "Kq7v" not in str(caught.value) and "Zp9w" not in str(caught.value)
    box = open_mailbox(f"imaps://news:{quote(password, safe='')}@mail.example.org/INBOX")
    assert (box.host, box.user, box._password, box.folder) == ("mail.example.org", "news", password, "INBOX")


@pytest.mark.parametrize("special", ["#", "/", "?"])
def test_newsletter_inbound_names_a_bad_url_in_one_line_without_the_password(monkeypatch, capsys, example_dir, special):
    from newsletter.cli import main

    monkeypatch.setenv("NEWSLETTER_INBOUND_URL", f"imaps://news:Kq7v{special}Zp9w@mail.example.org/INBOX")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET * 3)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{example_dir / 'newsletter.db'}")

    code = main(["inbound", "--dir", str(example_dir)])

    err = capsys.readouterr().err
    assert code == 1 and err.strip().count("\n") == 0 and "imaps://***@mail.example.org" in err
    assert "percent-encode" in err and "Kq7v" not in err and "Zp9w" not in err


def test_migration_0005_makes_exactly_the_tables_the_code_declares(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    mine = [d for d in diff if any(name in repr(d) for name in ("bounces", "inbound_messages"))]
    assert mine == []
    assert {"bounces", "inbound_messages"} <= set(sa.inspect(engine).get_table_names())
