"""The subscriber store on SQLite and PostgreSQL: addresses, networks, status and streamed recipients."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from newsletter import subscribers
from newsletter.errors import NotFound, SubscriberError
from newsletter.subscribers import Status

KNOWN = ["qa-leads", "fostering", "send"]


def add(engine, email, *networks, **kw):
    return subscribers.add(engine, email, networks=networks or ["qa-leads"], known_networks=KNOWN, **kw)


def test_add_and_find_ignoring_case(engine):
    added = add(engine, "Jo.Bloggs@Example.ORG", "qa-leads", "fostering", name=" Jo Bloggs ", organisation="Anyshire")
    assert added.email == "Jo.Bloggs@example.org"  # local part as written, domain normalised
    found = subscribers.find(engine, "jo.bloggs@EXAMPLE.org")
    assert found == added
    assert found.name == "Jo Bloggs"
    assert found.networks == {"qa-leads", "fostering"}
    assert found.status is Status.ACTIVE and found.status_changed_at.tzinfo is not None
    assert subscribers.by_id(engine, added.id) == added
    assert subscribers.find(engine, "nobody@example.org") is None
    assert subscribers.find(engine, "not an address") is None


def test_the_same_address_in_another_case_is_refused(engine):
    add(engine, "jo@example.org")
    with pytest.raises(SubscriberError, match="already a subscriber"):
        add(engine, "JO@Example.org")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(subscribers.subscribers_table)).scalar() == 1


def test_idn_domain_is_found_in_either_form(engine):
    added = add(engine, "info@Bücher.example")
    assert added.email == "info@bücher.example"
    assert subscribers.find(engine, "info@xn--bcher-kva.example") == added


def test_non_ascii_local_part_needs_smtputf8(engine):
    with pytest.raises(SubscriberError, match="SMTPUTF8"):
        add(engine, "jö@example.org")
    assert add(engine, "jö@example.org", smtputf8=True).email == "jö@example.org"


@pytest.mark.parametrize(
    ("email", "networks", "kw", "message"),
    [
        ("jo@example.org", ["qa-lead"], {}, "unknown network 'qa-lead' \\(did you mean 'qa-leads'\\?\\)"),
        ("jo@example.org", [" "], {}, "no network"),
        ("jo@example.org", ["send"], {"name": "Jo\r\nBloggs"}, "control character"),
        ("", ["send"], {}, "no email address"),
        ("jo@", ["send"], {}, "invalid email address"),
        ("jo@example.org\n", ["send"], {}, "control character"),
    ],
)
def test_bad_input_is_refused_with_a_reason(engine, email, networks, kw, message):
    with pytest.raises(SubscriberError, match=message):
        subscribers.add(engine, email, networks=networks, known_networks=KNOWN, **kw)
    assert list(subscribers.listing(engine)) == []


def test_set_status_records_when_and_why(engine):
    jo = add(engine, "jo@example.org")
    before = dt.datetime.now(dt.UTC)
    subscribers.set_status(engine, jo.id, Status.BOUNCED, reason="550 5.1.1 no such user")
    found = subscribers.by_id(engine, jo.id)
    assert found.status is Status.BOUNCED
    assert found.status_reason == "550 5.1.1 no such user"
    assert found.status_changed_at >= before - dt.timedelta(seconds=1)
    subscribers.set_status(engine, jo.id, Status.BOUNCED, reason="again")
    assert subscribers.by_id(engine, jo.id) == found  # the first bounce's time and reason are kept
    with pytest.raises(NotFound):
        subscribers.set_status(engine, jo.id + 100, Status.UNSUBSCRIBED, reason="x")


def test_set_networks_replaces_them(engine):
    jo = add(engine, "jo@example.org", "qa-leads", "send")
    subscribers.set_networks(engine, jo.id, ["fostering"], known_networks=KNOWN)
    assert subscribers.by_id(engine, jo.id).networks == {"fostering"}
    with pytest.raises(SubscriberError, match="unknown network"):
        subscribers.set_networks(engine, jo.id, ["fostering", "nope"], known_networks=KNOWN)
    assert subscribers.by_id(engine, jo.id).networks == {"fostering"}
    with pytest.raises(NotFound):
        subscribers.set_networks(engine, jo.id + 100, ["fostering"], known_networks=KNOWN)


def test_remove_deletes_the_address_and_its_networks(engine):
    jo = add(engine, "jo@example.org", "qa-leads", "send")
    add(engine, "sam@example.org")
    subscribers.remove(engine, "JO@example.org")
    assert subscribers.find(engine, "jo@example.org") is None
    with engine.connect() as conn:
        left = conn.execute(sa.select(subscribers.subscriber_networks_table.c.subscriber_id)).scalars().all()
    assert jo.id not in left and left
    with pytest.raises(NotFound):
        subscribers.remove(engine, "jo@example.org")


def test_recipients_are_active_members_once_each_with_all_their_networks(engine):
    a = add(engine, "a@example.org", "qa-leads", "fostering")
    b = add(engine, "b@example.org", "send")
    c = add(engine, "c@example.org", "fostering")
    d = add(engine, "d@example.org", "qa-leads")
    subscribers.set_status(engine, d.id, Status.UNSUBSCRIBED, reason="link")
    got = list(subscribers.recipients(engine, ["qa-leads", "fostering"]))
    assert [s.email for s in got] == [a.email, c.email]
    assert got[0].networks == {"qa-leads", "fostering"}
    assert [s.id for s in subscribers.recipients(engine, ["send"])] == [b.id]
    assert list(subscribers.recipients(engine, [])) == []
    assert list(subscribers.recipients(engine, ["no-such-network"])) == []


@pytest.mark.parametrize("count", [6, 7])
def test_recipients_stream_across_pages(engine, monkeypatch, count):
    monkeypatch.setattr(subscribers, "PAGE", 3)
    ids = [add(engine, f"p{i}@example.org", "qa-leads", "send").id for i in range(count)]
    add(engine, "other@example.org", "fostering")
    queries: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    got = list(subscribers.recipients(engine, ["qa-leads", "send"]))
    assert [s.id for s in got] == ids
    assert all(s.networks == {"qa-leads", "send"} for s in got)
    assert sum("LIMIT" in q for q in queries) >= 3  # it paged


def test_listing_filters_and_network_counts(engine):
    a = add(engine, "a@example.org", "qa-leads", "fostering")
    add(engine, "b@example.org", "qa-leads")
    subscribers.set_status(engine, a.id, Status.COMPLAINED, reason="feedback loop")
    assert [s.email for s in subscribers.listing(engine, network="fostering")] == ["a@example.org"]
    assert [s.email for s in subscribers.listing(engine, status=Status.ACTIVE)] == ["b@example.org"]
    assert [s.email for s in subscribers.listing(engine, network="qa-leads", status=Status.COMPLAINED)] == [
        "a@example.org"
    ]
    counts = subscribers.network_counts(engine)
    assert counts["qa-leads"][Status.ACTIVE] == 1 and counts["qa-leads"][Status.COMPLAINED] == 1
    assert counts["fostering"][Status.COMPLAINED] == 1 and "send" not in counts
