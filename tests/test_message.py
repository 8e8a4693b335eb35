"""Per-recipient messages, read back from the bytes a real SMTP server received."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import re
from email import policy
from email.header import decode_header, make_header
from types import SimpleNamespace

import pytest

from newsletter import links
from newsletter.content import Newsletter
from newsletter.errors import UnsafeHeaderValue
from newsletter.message import Composer, Outgoing, message_id_parts, notice, quoted_printable, unverp, verp
from newsletter.tokens import PLACEHOLDER, TOKEN_LENGTH, Signer
from newsletter.transports.smtp import SMTPTransport

ISSUE_DATE = dt.date(2026, 11, 27)
SECRET = "test-secret-key"


@pytest.fixture
def newsletter() -> Newsletter:
    return Newsletter.model_validate(
        {
            "name": "Regional Improvement Weekly",
            "sender": {"name": "Regional Improvement Programme", "email": "updates@improvement.example.org"},
            "reply_to": "office@improvement.example.org",
            "public_url": "https://news.improvement.example.org/",
            "networks": [{"id": "qa-leads", "name": "QA Leads"}],
        }
    )


def rendered(
    newsletter: Newsletter, *, html_extra: str = "", subject: str = "Weekly – Update No 453 – 27 November 2026"
):
    unsubscribe = links.unsubscribe_url(newsletter.public_url, PLACEHOLDER)
    preferences = links.preferences_url(newsletter.public_url, PLACEHOLDER)
    archive = links.archive_url(newsletter.public_url, ISSUE_DATE)
    html = (
        f'<html><body><p><a href="{archive}">View in your browser</a></p><p>Grüße from the programme.</p>'
        f"{html_extra}"
        f'<p><a href="{unsubscribe}">Unsubscribe</a> · <a href="{preferences}">Preferences</a></p></body></html>'
    )
    text = f"View in your browser: {archive}\n\nGrüße from the programme.\n\nUnsubscribe: {unsubscribe}\nPreferences: {preferences}\n"
    return SimpleNamespace(subject=subject, preheader="Preview", html=html, text=text)


def composer(newsletter: Newsletter, **options) -> Composer:
    content = options.pop("rendered", None) or rendered(newsletter)
    return Composer(
        newsletter, content, issue_date=options.pop("issue_date", ISSUE_DATE), signer=Signer(SECRET), **options
    )


def deliver(server, *messages: Outgoing) -> list[bytes]:
    """Send through SMTPTransport to the test server; the bytes it received, in order."""

    async def run() -> None:
        async with SMTPTransport(server.url, pool_size=1) as transport:
            for message in messages:
                await transport.send(message)

    asyncio.run(run())
    return [received.data for received in server.messages]


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def header_text(value: str) -> str:
    return str(make_header(decode_header(value)))


def test_received_message_is_multipart_alternative_text_first_with_every_header_once(smtp_server, newsletter):
    message = composer(newsletter).message(subscriber_id=42, email="jo.bloggs@example.org", name="Jo Bloggs")
    [data] = deliver(smtp_server, message)
    assert smtp_server.messages[0].mail_from == "updates@improvement.example.org"
    assert smtp_server.messages[0].rcpt_tos == ["jo.bloggs@example.org"]
    assert data.rstrip(b"\r\n") == message.data.rstrip(b"\r\n")  # the exact bytes built, not re-serialised

    parsed = parse(data)
    for name in (
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Reply-To",
        "MIME-Version",
    ):
        assert len(parsed.get_all(name, [])) == 1, name
    assert parsed["From"].addresses[0].display_name == "Regional Improvement Programme"
    assert parsed["To"].addresses[0].display_name == "Jo Bloggs"
    assert parsed["To"].addresses[0].addr_spec == "jo.bloggs@example.org"
    assert str(parsed["Subject"]) == "Weekly – Update No 453 – 27 November 2026"
    assert parsed["Date"].datetime.tzinfo is not None
    assert parsed["Message-ID"] == f"<{message.message_id}>"
    assert parsed["List-Id"] == "Regional Improvement Weekly <regional-improvement-weekly.improvement.example.org>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Precedence"] == "bulk"
    assert parsed["X-Auto-Response-Suppress"] == "OOF, AutoReply"

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Grüße from the programme." in parts[0].get_content()
    assert "<p>Grüße from the programme.</p>" in parts[1].get_content()
    assert not parsed.defects and all(not p.defects for p in parts)

    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert all(len(line) <= 76 for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    assert data.isascii()


def test_list_unsubscribe_holds_a_signed_token_for_this_recipient_and_the_same_link_is_in_both_bodies(
    smtp_server, newsletter
):
    [data] = deliver(smtp_server, composer(newsletter).message(subscriber_id=7, email="Sam@Example.org", name=None))
    parsed = parse(data)
    https = re.fullmatch(r"<(https://[^>]+)>", parsed["List-Unsubscribe"]).group(1)  # no mailto to a person's inbox
    assert https.startswith("https://news.improvement.example.org/unsubscribe/")
    token = https.rsplit("/", 1)[1]
    assert len(token) == TOKEN_LENGTH and token != PLACEHOLDER
    assert Signer(SECRET).verify(token, "sam@example.org").subscriber_id == 7

    text, html = (p.get_content() for p in parse(data).iter_parts())
    assert f"Unsubscribe: {https}" in text and f'href="{https}"' in html
    assert f"/preferences/{token}" in text and f"/preferences/{token}" in html
    assert PLACEHOLDER not in data.decode()
    assert "https://news.improvement.example.org/archive/2026-11-27" in html  # "view in your browser"


def test_with_an_unsubscribe_address_the_mailto_carries_the_same_token_in_its_local_part(smtp_server, newsletter):
    made = composer(newsletter, unsubscribe_address="unsubscribe@news.improvement.example.org")
    [data] = deliver(smtp_server, made.message(subscriber_id=7, email="sam@example.org", name=None))
    header = " ".join(parse(data)["List-Unsubscribe"].split())
    https, mailto = re.fullmatch(r"<(https://[^>]+)>, <mailto:([^>]+)>", header).groups()
    token = https.rsplit("/", 1)[1]
    assert mailto == f"unsubscribe+{token}@news.improvement.example.org"
    assert Signer(SECRET).verify(token, "sam@example.org").subscriber_id == 7


def test_verp_and_the_message_id_decode_back_to_the_subscriber():
    assert unverp("bounces@example.org", verp("bounces@example.org", 42)) == 42
    assert unverp("bounces@example.org", "<Bounces+42@EXAMPLE.org>") == 42
    for other in ("bounces@example.org", "bounces+x@example.org", "other+42@example.org", "bounces+42@example.net"):
        assert unverp("bounces@example.org", other) is None
    made = Composer.message_id(
        SimpleNamespace(test=False, _list_id="x.example.org", issue_date=ISSUE_DATE, domain="example.org"), 42
    )
    assert message_id_parts(f"<{made}>") == (ISSUE_DATE, 42)
    assert message_id_parts("<20261127.test.0123456789abcdef@example.org>") is None


def test_each_recipient_gets_their_own_token_and_message_id_deterministic_per_issue(newsletter):
    first = composer(newsletter)
    a = first.message(subscriber_id=1, email="a@example.org", name="A")
    b = first.message(subscriber_id=2, email="b@example.org", name="B")
    assert a.message_id != b.message_id
    assert a.message_id.endswith("@improvement.example.org") and a.message_id.startswith("20261127.1.")
    again = composer(newsletter).message(subscriber_id=1, email="a@example.org", name="A")
    assert again.message_id == a.message_id  # a resend after a crash carries the same Message-ID
    next_week = composer(newsletter, issue_date=ISSUE_DATE + dt.timedelta(days=7)).message(
        subscriber_id=1, email="a@example.org", name="A"
    )
    assert next_week.message_id != a.message_id
    token = lambda m: re.search(rb"/unsubscribe/([A-Za-z0-9_-]+)>", m.data).group(1).decode()  # noqa: E731
    assert Signer(SECRET).verify(token(b), "b@example.org").subscriber_id == 2
    assert token(a) != token(b)


def test_test_send_marks_the_subject_and_never_reuses_a_message_id(newsletter):
    test = composer(newsletter, test=True)
    one = test.message(subscriber_id=1, email="editor@example.org", name="Editor")
    two = test.message(subscriber_id=1, email="editor@example.org", name="Editor")
    assert header_text(parse(one.data)["Subject"]).startswith("[TEST] Weekly – Update No 453")
    assert one.message_id != two.message_id
    assert (
        one.message_id
        != composer(newsletter).message(subscriber_id=1, email="editor@example.org", name="Editor").message_id
    )


@pytest.mark.parametrize(
    "name",
    ["Tomasz Wójcik", "Siân O'Neill-Łukasiewicz", 'Jo "JB" Bloggs, Jr.', "Ζωή Παπαδοπούλου " * 8, "Jo Bloggs " * 9],
)
def test_names_are_quoted_or_encoded_and_read_back_exactly(smtp_server, newsletter, name):
    [data] = deliver(smtp_server, composer(newsletter).message(subscriber_id=3, email="x@example.org", name=name))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    to_lines = re.search(rb"^To:.*?\r\n(?! )", head + b"\r\n", flags=re.MULTILINE | re.DOTALL).group().split(b"\r\n")
    assert all(len(line) <= 78 for line in to_lines)
    to = parse(data)["To"]
    assert to.addresses[0].addr_spec == "x@example.org"
    if name.isascii():
        assert to.addresses[0].display_name == name.strip()
    else:  # the email package puts a space between adjacent encoded words (RFC 2047 says drop it): decode by the RFC
        raw = " ".join(
            re.search(rb"^To: (.*?)\r\n(?! )", head + b"\r\n", flags=re.MULTILINE | re.DOTALL).group(1).decode().split()
        )
        assert str(make_header(decode_header(raw))) == f"{name.strip()} <x@example.org>"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Jo\r\nBcc: victim@example.org"),
        ("name", "Jo\nBloggs"),
        ("name", "Jo\x00"),
        ("email", "jo@example.org\r\nBcc: victim@example.org"),
        ("email", "Jo <jo@example.org>"),
        ("email", "not-an-address"),
    ],
)
def test_line_breaks_and_control_characters_never_reach_a_header(newsletter, field, value):
    arguments = {"subscriber_id": 1, "email": "jo@example.org", "name": "Jo", field: value}
    with pytest.raises(UnsafeHeaderValue, match=field):
        composer(newsletter).message(**arguments)


def test_a_subject_with_a_line_break_is_refused_when_composing(newsletter):
    with pytest.raises(UnsafeHeaderValue, match="subject"):
        composer(newsletter, rendered=rendered(newsletter, subject="Weekly\r\nBcc: victim@example.org"))


def test_a_render_without_the_unsubscribe_link_is_refused(newsletter):
    content = rendered(newsletter)
    content.html = content.html.replace(PLACEHOLDER, "x" * TOKEN_LENGTH)
    with pytest.raises(ValueError, match="html part has no unsubscribe link"):
        composer(newsletter, rendered=content)


def test_bounce_address_gives_each_recipient_their_own_envelope_sender(smtp_server, newsletter):
    message = composer(newsletter, bounce_address="bounces@improvement.example.org").message(
        subscriber_id=42, email="jo@example.org", name="Jo"
    )
    deliver(smtp_server, message)
    assert (
        smtp_server.messages[0].mail_from
        == "bounces+42@improvement.example.org"
        == verp("bounces@improvement.example.org", 42)
    )
    assert parse(smtp_server.messages[0].data)["From"].addresses[0].addr_spec == "updates@improvement.example.org"


def sent_token(parsed, subscriber_id: int, address: str) -> str:
    """The token a message carries, checked to be this subscriber's (signing again could land in the next second)."""
    token = re.search(rf"/unsubscribe/([A-Za-z0-9_-]{{{TOKEN_LENGTH}}})>", parsed["List-Unsubscribe"]).group(1)
    assert Signer(SECRET).verify(token, address).subscriber_id == subscriber_id
    return token


def test_placeholder_is_never_split_by_a_soft_line_break_wherever_it_falls(newsletter):
    """One very long line (as MJML writes): the placeholder at every offset across the 76-character lines."""
    unsubscribe = links.unsubscribe_url(newsletter.public_url, PLACEHOLDER)
    pieces = [f'<a href="{unsubscribe}">u{"é" * (i % 3)}</a>{"x" * i} =' for i in range(160)]
    html = "<html><body>" + "".join(pieces) + "</body></html>"
    assert "\n" not in html and len(html) > 20_000
    content = SimpleNamespace(subject="S", preheader="P", html=html, text=f"Unsubscribe: {unsubscribe}")
    message = composer(newsletter, rendered=content).message(subscriber_id=9, email="nine@example.org", name=None)
    token = sent_token(parse(message.data), 9, "nine@example.org")
    html_part = list(parse(message.data).iter_parts())[1]
    assert html_part.get_content() == html.replace(PLACEHOLDER, token)
    assert all(len(line) <= 76 for line in message.data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))


def test_quoted_printable_round_trips_trailing_spaces_equals_signs_and_long_lines():
    import quopri

    text = "a line with trailing space \nend=equals\ttab\t\n" + "é" * 200 + "\n\n" + "." * 300 + "\u2028\x0c\n"
    encoded = quoted_printable(text)
    assert encoded.endswith(b"\r\n") and all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert quopri.decodestring(encoded).decode("utf-8").replace("\r\n", "\n") == text


def test_notice_is_a_plain_text_email_from_the_sender(smtp_server, newsletter):
    message = notice(
        newsletter,
        to="editor@example.org",
        subject="Issue 2026-11-27 was not sent",
        text="The scheduled send did not happen: no subscribers.\n",
    )
    [data] = deliver(smtp_server, message)
    parsed = parse(data)
    assert parsed.get_content_type() == "text/plain"
    assert parsed["To"] == "editor@example.org" and parsed["Subject"] == "Issue 2026-11-27 was not sent"
    assert parsed["Message-ID"] == f"<{message.message_id}>"
    assert parsed.get_content().replace("\r\n", "\n") == "The scheduled send did not happen: no subscribers.\n"
    with pytest.raises(UnsafeHeaderValue):
        notice(newsletter, to="editor@example.org", subject="Two\nlines", text="")


@pytest.fixture(scope="module")
def example():
    """The example folder's newest issue, assembled and rendered for real (MJML, inlined CSS)."""
    from conftest import EXAMPLES

    from newsletter.assembly import assemble
    from newsletter.folder import load_folder
    from newsletter.render import render

    folder = load_folder(EXAMPLES)
    issue = assemble(folder)
    return folder.newsletter, issue, render(issue)


def test_the_real_rendered_example_goes_out_intact(smtp_server, example):
    newsletter, issue, content = example
    message = Composer(newsletter, content, issue_date=issue.date, signer=Signer(SECRET)).message(
        subscriber_id=11, email="priya@anyshire.example.org", name="Priya Natarajan"
    )
    [data] = deliver(smtp_server, message)
    parsed = parse(data)
    token = sent_token(parsed, 11, "priya@anyshire.example.org")
    text, html = (part.get_content() for part in parsed.iter_parts())
    same = lambda got, sent: got.replace("\r\n", "\n").rstrip("\n") == sent.replace(PLACEHOLDER, token).rstrip("\n")  # noqa: E731
    assert same(html, content.html) and same(text, content.text)  # a final newline belongs to the MIME boundary
    assert str(parsed["Subject"]) == content.subject
    assert links.unsubscribe_url(newsletter.public_url, token) in parsed["List-Unsubscribe"]
    assert links.unsubscribe_url(newsletter.public_url, token) in html
    assert links.archive_url(newsletter.public_url, issue.date) in html
    assert all(len(line) <= 76 for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
