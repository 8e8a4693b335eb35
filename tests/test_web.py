"""The web service in-process over ASGI: one-click unsubscribe, preferences, archive, meetings, headers."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import re
import smtplib
import stat
import time
from dataclasses import dataclass
from email import policy
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import icalendar
import pytest
import sqlalchemy as sa
import yaml

from newsletter import ledger, subscribers
from newsletter.assembly import assemble
from newsletter.folder import load_folder
from newsletter.links import archive_url, meeting_ics_url, preferences_url, unsubscribe_url
from newsletter.message import Composer
from newsletter.render import render
from newsletter.store import open_store
from newsletter.subscribers import Status
from newsletter.tokens import PLACEHOLDER, Signer
from newsletter.web import ONE_CLICK_REASON, PAGE_REASON, BadTokenLimiter, create_app, form_key

PUBLIC = "https://news.improvement.example.org"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
KEY = "a real secret of 32 characters, at least"


@dataclass
class Site:
    root: Path
    engine: sa.Engine
    signer: Signer
    app: object
    jo: subscribers.Subscriber
    sam: subscribers.Subscriber

    def call(self, method: str, url: str, *, client: str = "192.0.2.1", base: str = PUBLIC, **kwargs) -> httpx.Response:
        """One request through the ASGI app, as a client at `client` reaching `base`."""

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(client, 40000))
            async with httpx.AsyncClient(transport=transport, base_url=base) as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(go())

    def token(self, who: subscribers.Subscriber, **kwargs) -> str:
        return self.signer.sign(who.id, who.email, **kwargs)

    def unsubscribe_path(self, who: subscribers.Subscriber, **kwargs) -> str:
        return unsubscribe_url(PUBLIC, self.token(who, **kwargs)).removeprefix(PUBLIC)

    def preferences_path(self, who: subscribers.Subscriber, **kwargs) -> str:
        return preferences_url(PUBLIC, self.token(who, **kwargs)).removeprefix(PUBLIC)

    def now(self, who: subscribers.Subscriber) -> subscribers.Subscriber:
        return subscribers.by_id(self.engine, who.id)


def make_site(root: Path, database_url: str, **options) -> Site:
    engine = open_store(database_url)
    known = load_folder(root).newsletter.network_ids
    jo = subscribers.add(
        engine, "Jo.Bloggs@example.org", networks=["qa-leads", "fostering"], known_networks=known, name="Jo Bloggs"
    )
    sam = subscribers.add(engine, "sam@example.net", networks=["send"], known_networks=known, name="Sam Other")
    signer = Signer("test secret")
    return Site(root, engine, signer, create_app(root, engine, signer, **options), jo, sam)


@pytest.fixture
def site(example_dir: Path, database_url: str):
    site = make_site(example_dir, database_url)
    yield site
    site.engine.dispose()


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body as a mailbox provider may post it."""
    boundary = "----provider-boundary-7d3f"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"


# one-click unsubscribe ---------------------------------------------------------------------


def test_one_click_post_urlencoded_unsubscribes_with_200_and_no_cookies(site):
    answer = site.call("POST", site.unsubscribe_path(site.jo), data=ONE_CLICK)
    assert answer.status_code == 200
    assert "location" not in answer.headers and "set-cookie" not in answer.headers
    jo = site.now(site.jo)
    assert jo.status == Status.UNSUBSCRIBED and jo.status_reason == ONE_CLICK_REASON
    assert site.now(site.sam).status == Status.ACTIVE


def test_one_click_post_multipart_unsubscribes(site):
    body, kind = multipart(ONE_CLICK)
    answer = site.call("POST", site.unsubscribe_path(site.jo), content=body, headers={"content-type": kind})
    assert answer.status_code == 200
    assert site.now(site.jo).status == Status.UNSUBSCRIBED


def test_one_click_post_without_content_type_is_read_as_urlencoded(site):
    answer = site.call("POST", site.unsubscribe_path(site.jo), content=b"List-Unsubscribe=One-Click")
    assert answer.status_code == 200
    assert site.now(site.jo).status == Status.UNSUBSCRIBED


def test_repeating_one_click_is_harmless_and_keeps_the_first_reason(site):
    path = site.unsubscribe_path(site.jo)
    site.call("POST", path, data=ONE_CLICK)
    first = site.now(site.jo)
    again = site.call("POST", path, data={**ONE_CLICK, "via": "page"})
    assert again.status_code == 200 and "You are unsubscribed" in again.text
    assert site.now(site.jo) == first


@pytest.mark.parametrize("body", [{}, {"List-Unsubscribe": "one-click"}, {"unsubscribe": "yes"}])
def test_post_without_the_one_click_body_changes_nothing(site, body):
    answer = site.call("POST", site.unsubscribe_path(site.jo), data=body)
    assert answer.status_code == 400
    assert site.now(site.jo).status == Status.ACTIVE


def test_get_never_unsubscribes_and_offers_a_confirm_button_posting_the_one_click_body(site):
    path = site.unsubscribe_path(site.jo)
    for _ in range(3):  # link scanners fetch URLs, sometimes more than once
        page = site.call("GET", path)
        assert page.status_code == 200
    assert site.now(site.jo).status == Status.ACTIVE
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.DOTALL)
    assert form and form.group(1) == path
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in form.group(2)
    assert "Jo.Bloggs@example.org" in page.text and "sam@example.net" not in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["x-robots-tag"] == "noindex"


def test_the_confirm_button_records_the_web_page_as_the_reason(site):
    page = site.call("GET", site.unsubscribe_path(site.jo))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page.text))
    answer = site.call("POST", site.unsubscribe_path(site.jo), data=fields)
    assert answer.status_code == 200
    assert site.now(site.jo).status_reason == PAGE_REASON


def test_bounced_or_complained_address_keeps_its_status_on_one_click(site):
    subscribers.set_status(site.engine, site.jo.id, Status.COMPLAINED, reason="feedback loop")
    assert site.call("POST", site.unsubscribe_path(site.jo), data=ONE_CLICK).status_code == 200
    jo = site.now(site.jo)
    assert (jo.status, jo.status_reason) == (Status.COMPLAINED, "feedback loop")


def test_an_oversized_post_is_refused_unread(site):
    body = b"List-Unsubscribe=One-Click&x=" + b"a" * 100_000
    answer = site.call(
        "POST",
        site.unsubscribe_path(site.jo),
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert site.now(site.jo).status == Status.ACTIVE


# bad tokens ----------------------------------------------------------------------------------


def tampered(token: str) -> str:
    i = len(token) - 5  # inside the MAC
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def bad_tokens(site: Site) -> dict[str, str]:
    jo, sam = site.jo, site.sam
    good = site.token(jo)
    return {
        "tampered MAC": tampered(good),
        "another subscriber's id": site.signer.sign(sam.id, jo.email),
        "another key": Signer("some other secret").sign(jo.id, jo.email),
        "unknown subscriber": site.signer.sign(999_999, "nobody@example.org"),
        "truncated": good[:-1],
        "not base64": "!" * len(good),
        "placeholder": PLACEHOLDER,
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("kind", ["unsubscribe", "preferences"])
def test_bad_tokens_get_a_4xx_page_and_change_nothing(site, kind, method):
    before = (site.now(site.jo), site.now(site.sam))
    for why, token in bad_tokens(site).items():
        data = {**ONE_CLICK, "network": "send"} if method == "POST" else None
        answer = site.call(method, f"/{kind}/{token}", data=data, client=f"198.51.100.{len(why)}")
        assert 400 <= answer.status_code < 500, why
        assert "text/html" in answer.headers["content-type"], why
        assert "Jo.Bloggs" not in answer.text and "sam@" not in answer.text, why  # no one's address
    assert (site.now(site.jo), site.now(site.sam)) == before


def test_preferences_links_are_good_for_at_least_sixty_days_then_expire(site):
    day = 86400
    assert site.call("GET", site.preferences_path(site.jo, issued=time.time() - 61 * day)).status_code == 200
    path = site.preferences_path(site.jo, issued=time.time() - site.signer.max_age.total_seconds() - day)
    key = form_key(site.signer, path.rsplit("/", 1)[1], site.jo.id)
    for method in ("GET", "POST"):
        data = {"form_key": key, "network": "send"} if method == "POST" else None
        answer = site.call(method, path, data=data, headers={"origin": PUBLIC})
        assert answer.status_code == 400 and "expired" in answer.text
        assert "use the unsubscribe link" in answer.text.lower() and "ask for a new link" in answer.text
    assert site.now(site.jo).networks == {"qa-leads", "fostering"}


def test_an_unsubscribe_link_works_at_any_age(site):
    """As long as the reader has the email: a token signed 400 days ago still unsubscribes, by page and one click."""
    then = time.time() - 400 * 86400
    old = Signer("test secret", clock=lambda: then).sign(site.jo.id, site.jo.email)
    assert site.signer.expired(Signer.peek(old))
    page = site.call("GET", f"/unsubscribe/{old}")
    assert page.status_code == 200 and "Jo.Bloggs@example.org" in page.text
    assert site.call("POST", f"/unsubscribe/{old}", data=ONE_CLICK).status_code == 200
    assert site.now(site.jo).status == Status.UNSUBSCRIBED
    # still signed: an old token for another address, or under another key, does nothing
    forged = Signer("some other secret", clock=lambda: then).sign(site.sam.id, site.sam.email)
    assert site.call("POST", f"/unsubscribe/{forged}", data=ONE_CLICK).status_code == 400
    assert (
        site.call("POST", f"/unsubscribe/{tampered(site.token(site.sam, issued=then))}", data=ONE_CLICK).status_code
        == 400
    )
    assert site.now(site.sam).status == Status.ACTIVE


def test_repeated_bad_tokens_are_rate_limited_per_client(example_dir, database_url):
    site = make_site(example_dir, database_url, rate_limit=3)
    bad = tampered(site.token(site.jo))
    answers = [site.call("GET", f"/unsubscribe/{bad}", client="203.0.113.9").status_code for _ in range(4)]
    assert answers == [400, 400, 400, 429]
    # once limited, even a good token is refused from that address (no guessing around it) ...
    assert site.call("POST", site.unsubscribe_path(site.jo), data=ONE_CLICK, client="203.0.113.9").status_code == 429
    assert site.now(site.jo).status == Status.ACTIVE
    # ... while other readers are served
    assert site.call("GET", site.unsubscribe_path(site.jo), client="203.0.113.10").status_code == 200
    site.engine.dispose()


def test_limiter_forgets_after_its_window():
    clock = [1000.0]
    limiter = BadTokenLimiter(2, window=60, clock=lambda: clock[0])
    limiter.record("a")
    limiter.record("a")
    assert limiter.blocked("a") and not limiter.blocked("b")
    clock[0] += 61
    assert not limiter.blocked("a")


# preferences ---------------------------------------------------------------------------------


def preferences_form(site: Site, path: str) -> dict:
    page = site.call("GET", path)
    assert page.status_code == 200
    key = re.search(r'name="form_key" value="([^"]+)"', page.text).group(1)
    checked = re.findall(r'name="network" value="([^"]+)" checked', page.text)
    return {"form_key": key, "checked": checked, "page": page}


def test_preferences_page_shows_own_networks_only(site):
    form = preferences_form(site, site.preferences_path(site.jo))
    assert sorted(form["checked"]) == ["fostering", "qa-leads"]
    page = form["page"]
    assert "Jo.Bloggs@example.org" in page.text and "sam@example.net" not in page.text and "Sam Other" not in page.text
    assert page.headers["referrer-policy"] == "same-origin" and page.headers["cache-control"] == "no-store"
    assert re.search(r'<form method="post" action="/preferences/[^"]+">', page.text)


def test_preferences_change_networks(site):
    path = site.preferences_path(site.jo)
    form = preferences_form(site, path)
    answer = site.call(
        "POST", path, data={"form_key": form["form_key"], "network": ["send", "adoption"]}, headers={"origin": PUBLIC}
    )
    assert answer.status_code == 200 and "Saved" in answer.text
    jo = site.now(site.jo)
    assert jo.networks == {"send", "adoption"} and jo.status == Status.ACTIVE
    assert sorted(re.findall(r'name="network" value="([^"]+)" checked', answer.text)) == ["adoption", "send"]


def test_leaving_every_network_unsubscribes_and_ticking_again_resubscribes(site):
    path = site.preferences_path(site.jo)
    key = preferences_form(site, path)["form_key"]
    left = site.call("POST", path, data={"form_key": key}, headers={"origin": PUBLIC})
    assert left.status_code == 200
    jo = site.now(site.jo)
    assert (jo.status, jo.status_reason) == (Status.UNSUBSCRIBED, PAGE_REASON)
    assert jo.networks == {"qa-leads", "fostering"}  # kept, in case they come back
    back = site.call("POST", path, data={"form_key": key, "network": "fostering"}, headers={"origin": PUBLIC})
    assert back.status_code == 200 and "Welcome back" in back.text
    jo = site.now(site.jo)
    assert jo.status == Status.ACTIVE and jo.networks == {"fostering"}


@pytest.mark.parametrize("status", [Status.BOUNCED, Status.COMPLAINED])
def test_a_bounced_or_complained_address_cannot_come_back_on_the_preferences_page(site, status):
    """Only an `unsubscribed` reader may resubscribe there: the others were stopped for their mailbox's sake."""
    path = site.preferences_path(site.jo)
    key = preferences_form(site, path)["form_key"]
    subscribers.set_status(site.engine, site.jo.id, status, reason="from the mailbox")
    before = site.now(site.jo)
    page = site.call("GET", path)
    assert page.status_code == 200 and "We stopped sending to this address" in page.text
    assert "<form" not in page.text
    for data in ({"form_key": key, "network": "send"}, {"form_key": key}):
        answer = site.call("POST", path, data=data, headers={"origin": PUBLIC})
        assert answer.status_code == 409 and "We stopped sending to this address" in answer.text
    assert site.now(site.jo) == before


def test_preferences_accept_a_referer_from_the_served_origin(site):
    path = site.preferences_path(site.jo)
    key = preferences_form(site, path)["form_key"]
    base = "http://127.0.0.1:8123"
    answer = site.call(
        "POST", path, base=base, data={"form_key": key, "network": "send"}, headers={"referer": base + path}
    )
    assert answer.status_code == 200 and site.now(site.jo).networks == {"send"}


@pytest.mark.parametrize(
    "case",
    [
        "no origin",
        "null origin",
        "other origin",
        "other referer",
        "no form key",
        "wrong form key",
        "another token's key",
        "unknown network",
    ],
)
def test_cross_site_or_forged_preference_posts_change_nothing(site, case):
    path = site.preferences_path(site.jo)
    key = preferences_form(site, path)["form_key"]
    data = {"form_key": key, "network": "send"}
    headers = {"origin": PUBLIC}
    if case == "no origin":
        headers = {}
    elif case == "null origin":
        headers = {"origin": "null"}
    elif case == "other origin":
        headers = {"origin": "https://evil.example.com"}
    elif case == "other referer":
        headers = {"referer": "https://news.improvement.example.org.evil.example.com/x"}
    elif case == "no form key":
        del data["form_key"]
    elif case == "wrong form key":
        data["form_key"] = tampered(key)
    elif case == "another token's key":
        data["form_key"] = form_key(site.signer, site.token(site.jo, issued=time.time() - 10), site.jo.id)
    elif case == "unknown network":
        data["network"] = ["send", "nonexistent"]
    before = site.now(site.jo)
    answer = site.call("POST", path, data=data, headers=headers)
    assert answer.status_code in (400, 403)
    assert site.now(site.jo) == before


def test_a_running_send_honours_web_changes_for_recipients_not_yet_sent(site):
    """The web only writes to the store; the send engine reads each recipient again when it claims them."""
    send, _ = ledger.create_send(site.engine, dt.date(2026, 11, 27), ["qa-leads", "fostering", "send"])
    site.call("POST", site.unsubscribe_path(site.sam), data=ONE_CLICK)  # Sam leaves by one click
    path = site.preferences_path(site.jo)
    key = preferences_form(site, path)["form_key"]
    site.call("POST", path, data={"form_key": key, "network": ["fostering", "adoption"]}, headers={"origin": PUBLIC})
    claims, suppressed = ledger.claim(site.engine, send, worker="test", limit=10, lease=dt.timedelta(minutes=5))
    assert suppressed == 1
    assert [(c.email, c.networks) for c in claims] == [("Jo.Bloggs@example.org", {"fostering"})]


# archive, feed, meetings ---------------------------------------------------------------------


def test_archive_lists_only_sent_issues_and_serves_their_public_version(site):
    index = site.call("GET", "/archive/")
    assert index.status_code == 200 and "No issue has been sent yet" in index.text
    assert site.call("GET", "/archive/2026-11-27").status_code == 404  # not sent: not published

    ledger.create_send(site.engine, dt.date(2026, 11, 27), ["qa-leads"])
    index = site.call("GET", "/archive/")
    assert 'href="/archive/2026-11-27"' in index.text and "Update No 119" in index.text
    assert "2026-11-20" not in index.text

    issue = site.call("GET", "/archive/2026-11-27")
    assert issue.status_code == 200
    # every item, whatever network it targets, and no token links
    for programme in (
        "Preventing exploitation outside the home",
        "New duties in the Family Support Act",
        "SEND inspection outcomes",
    ):
        assert programme in issue.text
    assert PLACEHOLDER not in issue.text and "/unsubscribe/" not in issue.text
    assert "View in your browser" not in issue.text  # it is the browser view
    assert "script-src" not in issue.headers["content-security-policy"]
    assert "'unsafe-inline'" in issue.headers["content-security-policy"]
    assert site.call("GET", "/archive/2026-13-01").status_code == 404


def test_the_email_view_in_browser_link_is_served(site):
    ledger.create_send(site.engine, dt.date(2026, 11, 20), ["qa-leads"])
    path = archive_url(PUBLIC, dt.date(2026, 11, 20)).removeprefix(PUBLIC)
    assert site.call("GET", path).status_code == 200


def test_atom_feed_has_one_entry_per_sent_issue(site):
    for date in (dt.date(2026, 11, 20), dt.date(2026, 11, 27)):
        ledger.create_send(site.engine, date, ["qa-leads"])
    answer = site.call("GET", "/archive/feed.atom")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.fromstring(answer.content)
    entries = feed.findall("a:entry", ns)
    assert [e.find("a:link", ns).get("href") for e in entries] == [
        f"{PUBLIC}/archive/2026-11-27",
        f"{PUBLIC}/archive/2026-11-20",
    ]
    assert "Update No 119" in entries[0].find("a:title", ns).text
    assert feed.find("a:updated", ns).text.endswith("Z")


def test_meeting_invitation_is_served_at_the_emails_link(site):
    meeting = load_folder(site.root).issues[dt.date(2026, 11, 27)].meetings[0]
    answer = site.call("GET", meeting_ics_url(PUBLIC, meeting).removeprefix(PUBLIC))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")
    event = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")[0]
    assert str(event["summary"]) == meeting.title
    assert site.call("GET", "/meetings/2099-01-01-nobody-nothing.ics").status_code == 404


def test_every_link_of_a_sent_message_is_served(site, smtp_server):
    """Compose Jo's copy with the message code, send it over SMTP, and follow each link to this site."""
    date = dt.date(2026, 11, 27)
    ledger.create_send(site.engine, date, ["qa-leads", "fostering"])
    folder = load_folder(site.root)
    rendered = render(assemble(folder, date).variant(site.jo.networks), personal=True)
    outgoing = Composer(folder.newsletter, rendered, issue_date=date, signer=site.signer).message(
        subscriber_id=site.jo.id, email=site.jo.email, name=site.jo.name
    )
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail(outgoing.mail_from, [outgoing.to], outgoing.data)
    message = email.message_from_bytes(smtp_server.messages[0].data, policy=policy.default)
    html = message.get_body(("html",)).get_content()
    ours = sorted(set(re.findall(rf'href="{re.escape(PUBLIC)}(/[^"]*)"', html)))
    kinds = {path.split("/")[1] for path in ours}
    assert {"unsubscribe", "preferences", "archive", "meetings"} <= kinds
    for path in ours:
        assert site.call("GET", path.replace("&amp;", "&")).status_code == 200, path
    assert site.now(site.jo).status == Status.ACTIVE  # following every link changed nothing


# the shell -----------------------------------------------------------------------------------


def test_health(site):
    answer = site.call("GET", "/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_security_headers_everywhere_and_hsts_only_over_https(site):
    for path in ("/archive/", site.unsubscribe_path(site.jo), "/health", "/archive/nope"):
        headers = site.call("GET", path).headers
        assert (
            "default-src" in headers["content-security-policy"]
            and "script-src" not in headers["content-security-policy"]
        )
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in site.call("GET", "/health", base="http://127.0.0.1:8000").headers


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "news.improvement.example.org.evil.example"])
def test_redirects_never_name_the_request_s_host(example_dir, database_url, host):
    config = example_dir / "newsletter.yaml"
    data = yaml.safe_load(config.read_text())
    data["public_url"] = "https://programme.example.org/news/"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    site = make_site(example_dir, database_url)
    cases = {
        "/news": "/news/",
        "/news/": "/news/archive/",
        "/news/archive": "/news/archive/",
        "/news/archive/2026-11-27/?x=1": "/news/archive/2026-11-27?x=1",
    }
    for path, location in cases.items():
        answer = site.call("GET", path, base="http://127.0.0.1:8000", headers={"host": host})
        assert 300 <= answer.status_code < 400, path
        assert answer.headers["location"] == location, path
    site.engine.dispose()


def test_routes_live_under_the_public_url_path(example_dir, database_url):
    config = example_dir / "newsletter.yaml"
    data = yaml.safe_load(config.read_text())
    data["public_url"] = "https://programme.example.org/news/"
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    site = make_site(example_dir, database_url)
    base = "https://programme.example.org"
    assert site.call("GET", "/news/health", base=base).status_code == 200
    assert site.call("GET", "/health", base=base).status_code == 404
    token = site.token(site.jo)
    page = site.call("GET", f"/news/unsubscribe/{token}", base=base)
    assert f'action="/news/unsubscribe/{token}"' in page.text and 'href="/news/site.css"' in page.text
    form = re.search(r'name="form_key" value="([^"]+)"', site.call("GET", f"/news/preferences/{token}", base=base).text)
    answer = site.call(
        "POST",
        f"/news/preferences/{token}",
        base=base,
        data={"form_key": form.group(1), "network": "send"},
        headers={"origin": base},
    )
    assert answer.status_code == 200 and site.now(site.jo).networks == {"send"}
    assert site.call("POST", f"/news/unsubscribe/{token}", base=base, data=ONE_CLICK).status_code == 200
    assert site.now(site.jo).status == Status.UNSUBSCRIBED
    site.engine.dispose()


def test_a_content_edit_with_errors_keeps_the_last_good_version(site):
    ledger.create_send(site.engine, dt.date(2026, 11, 27), ["qa-leads"])
    assert site.call("GET", "/archive/2026-11-27").status_code == 200
    issue = site.root / "content" / "issues" / "2026-11-27.yaml"
    issue.write_text(issue.read_text() + "\nunknown_key: 1\n")
    answer = site.call("GET", "/archive/2026-11-27")
    assert answer.status_code == 200 and "Update No 119" in site.call("GET", "/archive/").text


# the serve command ---------------------------------------------------------------------------


def test_serve_refuses_a_short_secret_key_without_printing_it(example_dir, monkeypatch, capsys):
    from newsletter.cli import main

    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "x3q")
    assert main(["serve", "--dir", str(example_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "NEWSLETTER_SECRET_KEY" in err and "at least 32 characters" in err
    assert "secrets.token_urlsafe(32)" in err and "x3q" not in err


def test_serve_refuses_to_start_without_a_secret_key(example_dir, monkeypatch, capsys):
    from newsletter.cli import main

    monkeypatch.delenv("NEWSLETTER_SECRET_KEY", raising=False)
    assert main(["serve", "--dir", str(example_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "NEWSLETTER_SECRET_KEY" in err
    assert not (example_dir / ".secret_key").exists()


def serve_process(example_dir: Path, tmp_path: Path, *extra: str, secret: str | None):
    """`newsletter serve` in a process of its own on a free port: (process, base URL, database URL)."""
    from conftest import command_process, free_port

    port = free_port()
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {"NEWSLETTER_DATABASE_URL": database, **({"NEWSLETTER_SECRET_KEY": secret} if secret else {})}
    base = f"http://127.0.0.1:{port}"
    argv = ["serve", "--dir", str(example_dir), "--port", str(port), *extra]
    return command_process(*argv, ready=base + "/health", env=env), base, database


def stop(process) -> str:
    """End the server; everything it printed."""
    process.terminate()
    output, _ = process.communicate(timeout=10)
    return output


def test_serve_signs_with_the_secret_key_and_says_where_the_archive_is(example_dir, tmp_path):
    process, base, database = serve_process(example_dir, tmp_path, secret=KEY)
    try:
        engine = open_store(database)
        known = load_folder(example_dir).newsletter.network_ids
        jo = subscribers.add(engine, "jo@example.org", networks=["send"], known_networks=known)
        good = Signer(KEY).sign(jo.id, jo.email)
        assert httpx.get(f"{base}/unsubscribe/{Signer('another key').sign(jo.id, jo.email)}").status_code == 400
        assert httpx.get(f"{base}/unsubscribe/{good}").status_code == 200
        assert httpx.post(f"{base}/unsubscribe/{good}", data=ONE_CLICK).status_code == 200
        assert subscribers.by_id(engine, jo.id).status == Status.UNSUBSCRIBED
        engine.dispose()
    finally:
        output = stop(process)
    assert f"archive: https://news.improvement.example.org/archive/ (here: {base}/archive/)" in output
    assert good not in output  # the access log shows <token>, never the token
    assert "/unsubscribe/<token>" in output
    assert not (example_dir / ".secret_key").exists()


def test_serve_dev_uses_the_development_key_of_send_and_says_so(example_dir, tmp_path):
    process, base, database = serve_process(example_dir, tmp_path, "--dev", secret=None)
    try:
        key = (example_dir / ".secret_key").read_text().strip()  # what `newsletter send` signs the outbox's links with
        assert stat.S_IMODE((example_dir / ".secret_key").stat().st_mode) == 0o600 and len(key) >= 32
        engine = open_store(database)
        jo = subscribers.add(engine, "jo@example.org", networks=["send"], known_networks=["send"])
        assert httpx.get(f"{base}/unsubscribe/{Signer(key).sign(jo.id, jo.email)}").status_code == 200
        engine.dispose()
    finally:
        output = stop(process)
    assert "development key" in output


def resident_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, flags=re.MULTILINE).group(1))


def chunks(head: bytes, total: int, size: int = 64 * 1024):
    """`total` bytes of form body from a generator: httpx sends it chunked, with no Content-Length."""
    yield head
    for _ in range(total // size):
        yield b"a" * size


@pytest.mark.slow
def test_a_huge_chunked_body_is_refused_while_it_streams(example_dir, tmp_path):
    """50 MB chunked, of every content type, at the running server: 413, and its memory does not grow."""
    process, base, database = serve_process(example_dir, tmp_path, secret=KEY)
    try:
        engine = open_store(database)
        jo = subscribers.add(engine, "jo@example.org", networks=["send"], known_networks=["send"])
        path = f"{base}/unsubscribe/{Signer(KEY).sign(jo.id, jo.email)}"
        with httpx.Client(timeout=60) as http:
            # a small form of each kind first, so what reading one takes is in memory before we measure
            body, kind = multipart({"via": "page"})
            for headers, content in (({"content-type": kind}, body), ({}, b"via=page")):
                assert http.post(path, content=content, headers=headers).status_code == 400
            before = resident_kb(process.pid)
            field = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n'  # a field that never ends
            for kind, head in (
                ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click&x="),
                ("multipart/form-data; boundary=b", field),
                (None, b"List-Unsubscribe=One-Click&x="),
            ):
                headers = {"content-type": kind} if kind else {}
                answer = http.post(path, content=chunks(head, 50 * 2**20), headers=headers)
                assert answer.status_code == 413 and "content-length" not in answer.request.headers, kind
            grown = resident_kb(process.pid) - before
        assert grown < 8 * 1024, f"the server grew by {grown} kB"
        assert subscribers.by_id(engine, jo.id).status == Status.ACTIVE
        engine.dispose()
    finally:
        stop(process)
