"""The web service in real headless Chromium: the links of a received message, clicked like a reader would."""

from __future__ import annotations

import datetime as dt
import email
import re
import smtplib
from dataclasses import dataclass
from email import policy
from pathlib import Path

import browser as cdp
import httpx
import pytest
import sqlalchemy as sa
from conftest import served

from newsletter import ledger, subscribers
from newsletter.assembly import assemble
from newsletter.folder import load_folder
from newsletter.message import Composer
from newsletter.render import render
from newsletter.store import open_store
from newsletter.subscribers import Status
from newsletter.tokens import Signer
from newsletter.web import PAGE_REASON, create_app

pytestmark = pytest.mark.browser  # needs Debian's chromium (.ci/run installs it); missing, these fail

ISSUE = dt.date(2026, 11, 27)


@dataclass
class Live:
    base: str
    public: str
    engine: sa.Engine
    signer: Signer
    jo: subscribers.Subscriber

    def local(self, url: str) -> str:
        """A URL from the email, pointed at the test server instead of the public host."""
        assert url.startswith(self.public), url
        return self.base + url.removeprefix(self.public.rstrip("/"))


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    with cdp.Browser.start(tmp_path_factory.mktemp("chromium")) as browser:
        yield browser


@pytest.fixture
def page(chromium):
    page = chromium.new_page(width=420, height=900)  # a phone-sized window
    yield page
    page.close()


@pytest.fixture
def live(example_dir: Path, tmp_path: Path):
    engine = open_store(f"sqlite:///{tmp_path / 'web.db'}")
    folder = load_folder(example_dir)
    known = folder.newsletter.network_ids
    jo = subscribers.add(
        engine, "jo.bloggs@example.org", networks=["qa-leads", "fostering"], known_networks=known, name="Jo Bloggs"
    )
    subscribers.add(engine, "sam@example.net", networks=["send"], known_networks=known, name="Sam Other")
    ledger.create_send(engine, ISSUE, sorted(known))
    signer = Signer("browser test secret")
    app = create_app(example_dir, engine, signer)
    with served(app, ws="none", lifespan="off") as base:
        yield Live(base, folder.newsletter.public_url, engine, signer, jo)
    engine.dispose()


def received_message(live: Live, example_dir: Path, smtp_server) -> email.message.EmailMessage:
    """Jo's copy of the issue, composed by the message code, sent over SMTP and parsed as received."""
    folder = load_folder(example_dir)
    issue = assemble(folder, ISSUE).variant(live.jo.networks)
    composer = Composer(folder.newsletter, render(issue, personal=True), issue_date=ISSUE, signer=live.signer)
    outgoing = composer.message(subscriber_id=live.jo.id, email=live.jo.email, name=live.jo.name)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail(outgoing.mail_from, [outgoing.to], outgoing.data)
    (received,) = smtp_server.messages
    return email.message_from_bytes(received.data, policy=policy.default)


def html_of(message: email.message.EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def test_unsubscribe_from_the_link_in_a_received_message(live, example_dir, smtp_server, page):
    message = received_message(live, example_dir, smtp_server)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)
    assert link in html_of(message)  # the visible link in the body is the same one

    assert page.goto(live.local(link)) == 200
    assert "Stop sending" in page.text() and "jo.bloggs@example.org" in page.text()
    assert subscribers.by_id(live.engine, live.jo.id).status == Status.ACTIVE  # opening the page changed nothing

    page.click("#confirm")
    assert page.status() == 200 and page.url == live.local(link)  # answered in place: no redirect
    assert "You are unsubscribed" in page.text()
    jo = subscribers.by_id(live.engine, live.jo.id)
    assert (jo.status, jo.status_reason) == (Status.UNSUBSCRIBED, PAGE_REASON)
    assert page.errors == []


def test_change_networks_on_the_preferences_page(live, example_dir, smtp_server, page):
    message = received_message(live, example_dir, smtp_server)
    link = re.search(r'href="(https://[^"]+/preferences/[^"]+)"', html_of(message)).group(1)

    assert page.goto(live.local(link)) == 200
    checked = page.evaluate("[...document.querySelectorAll('input[name=network]:checked')].map(e => e.value).sort()")
    assert checked == ["fostering", "qa-leads"]
    page.click("input[value=fostering]", navigates=False)
    page.click("input[value=send]", navigates=False)
    page.click("#save")
    assert page.status() == 200 and "Saved" in page.text()
    assert subscribers.by_id(live.engine, live.jo.id).networks == {"qa-leads", "send"}

    # leaving every network unsubscribes; ticking one again brings the reader back
    for network in ("qa-leads", "send"):
        page.click(f"input[value={network}]", navigates=False)
    page.click("#save")
    assert subscribers.by_id(live.engine, live.jo.id).status == Status.UNSUBSCRIBED
    page.click("input[value=adoption]", navigates=False)
    page.click("#save")
    jo = subscribers.by_id(live.engine, live.jo.id)
    assert (jo.status, jo.networks) == (Status.ACTIVE, {"adoption"})
    assert page.errors == []


def test_open_the_archive_and_an_issue_in_it(live, page):
    assert page.goto(live.base + "/archive/") == 200
    assert "Update No 119" in page.text()
    page.click(f'a[href="/archive/{ISSUE}"]')
    assert page.status() == 200 and page.url == f"{live.base}/archive/{ISSUE}"
    text = page.text()
    for programme in (
        "Preventing exploitation outside the home",
        "New duties in the Family Support Act",
        "SEND inspection outcomes",
    ):
        assert programme in text  # the public version: every item, whoever it targets
    # The picture is linked at the public host, which this sandbox cannot resolve; the app serves it.
    assert [e for e in page.errors if "ERR_NAME_NOT_RESOLVED" not in e] == []
    picture = re.search(r'<img[^>]* src="([^"]+)"', httpx.get(page.url).text).group(1)
    assert httpx.get(live.local(picture)).headers["content-type"] == "image/png"
