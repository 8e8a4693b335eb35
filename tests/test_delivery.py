"""The send engine over real SMTP (aiosmtpd on 127.0.0.1), on SQLite and PostgreSQL: what arrives, retries, bounces, pauses."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import email
import shutil
import socket
import threading
import time
import zlib
from collections import Counter
from email import policy
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from conftest import free_port

from newsletter import delivery, ledger, subscribers
from newsletter.delivery import DeliveryOptions, SendConfig
from newsletter.errors import ConfigError, NoRecipients, NotFound, SendPaused, SubscriberError
from newsletter.folder import load_folder
from newsletter.tokens import Signer
from newsletter.transports import MemoryTransport, SMTPTransport

DATE = dt.date(2026, 11, 27)
SIGNER = Signer("test-secret")
CONFIG = SendConfig(SIGNER)
QA_ONLY_ITEM = "Preventing exploitation outside the home"  # the issue's item for ad-safeguarding and qa-leads
FAST = DeliveryOptions(concurrency=4, retry_base=0.05, max_attempts=4, pause_after_errors=1000, poll=0.05)


@pytest.fixture
def folder(example_dir):
    return load_folder(example_dir)


def add(engine, folder, email_address: str, *networks: str, name: str | None = None) -> subscribers.Subscriber:
    return subscribers.add(
        engine, email_address, networks=networks, known_networks=folder.newsletter.network_ids, name=name
    )


def crowd(engine, folder, count: int) -> list[subscribers.Subscriber]:
    """`count` subscribers spread over the networks, one or two each."""
    ids = sorted(folder.newsletter.network_ids)
    return [
        add(engine, folder, f"reader{i:03d}@example.org", *{ids[i % len(ids)], ids[(i * 3) % len(ids)]})
        for i in range(count)
    ]


def send(folder, engine, server, options: DeliveryOptions = FAST, **kwargs) -> delivery.SendSummary:
    async def run():
        async with SMTPTransport(server.url, pool_size=options.concurrency) as transport:
            return await delivery.send_issue(
                folder, engine, transport, config=SendConfig(SIGNER, options), date=DATE, **kwargs
            )

    return asyncio.run(run())


def parsed(received) -> email.message.EmailMessage:
    return email.message_from_bytes(received.data, policy=policy.default)


def bodies(message) -> str:
    return message.get_body(("plain",)).get_content() + message.get_body(("html",)).get_content()


def by_recipient(server) -> dict[str, list]:
    found: dict[str, list] = {}
    for received in server.messages:
        for to in received.rcpt_tos:
            found.setdefault(to, []).append(received)
    return found


def rows(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.email: r._asdict() for r in conn.execute(ledger.deliveries_table.select())}


def on_first_attempt(answer: str, chosen) -> callable:
    """A reply hook answering `answer` to the first attempt of each chosen recipient."""
    seen: set[str] = set()
    lock = threading.Lock()

    def reply(envelope):
        to = envelope.rcpt_tos[0]
        with lock:
            first = to not in seen
            seen.add(to)
        return answer if first and chosen(to) else None

    return reply


def test_each_reader_gets_their_networks_variant_once(engine, folder, smtp_server):
    fostering = add(engine, folder, "fay@example.org", "fostering", name="Fay Foster")
    qa = add(engine, folder, "quinn@example.org", "qa-leads")
    both = add(engine, folder, "bo@example.org", "fostering", "ad-safeguarding")
    add(engine, folder, "gone@example.org", "qa-leads")
    subscribers.set_status(
        engine, subscribers.find(engine, "gone@example.org").id, subscribers.Status.UNSUBSCRIBED, reason="test"
    )

    summary = send(folder, engine, smtp_server)

    assert summary.finished and summary.tally["sent"] == 3 and summary.this_run["sent"] == 3
    got = by_recipient(smtp_server)
    assert sorted(got) == ["bo@example.org", "fay@example.org", "quinn@example.org"]
    assert all(len(v) == 1 for v in got.values())
    messages = {to: parsed(v[0]) for to, v in got.items()}
    assert QA_ONLY_ITEM not in bodies(messages["fay@example.org"])
    assert QA_ONLY_ITEM in bodies(messages["quinn@example.org"])
    assert QA_ONLY_ITEM in bodies(messages["bo@example.org"])
    assert "Fay Foster" in messages["fay@example.org"]["To"]
    # each link carries the reader's own token, and the ledger keeps the Message-ID that went out
    ledger_rows = rows(engine)
    for person in (fostering, qa, both):
        message = messages[person.email]
        token = message["List-Unsubscribe"].split("/unsubscribe/")[1].split(">")[0]
        assert SIGNER.verify(token, person.email).subscriber_id == person.id
        assert message["Message-ID"] == f"<{ledger_rows[person.email]['message_id']}>"
        assert ledger_rows[person.email]["state"] == "sent" and ledger_rows[person.email]["attempts"] == 1

    again = send(folder, engine, smtp_server)
    assert again.finished and again.this_run["sent"] == 0
    assert len(smtp_server.messages) == 3


def test_451_to_a_third_of_first_attempts_is_retried_until_delivered(engine, folder, smtp_server):
    people = crowd(engine, folder, 30)
    refused = lambda to: zlib.crc32(to.encode()) % 3 == 0  # noqa: E731
    smtp_server.handler.reply = on_first_attempt("451 4.3.0 try again later", refused)

    summary = send(folder, engine, smtp_server)

    got = by_recipient(smtp_server)
    assert summary.finished and summary.tally["sent"] == 30
    assert sorted(got) == sorted(p.email for p in people) and all(len(v) == 1 for v in got.values())
    retried = {p.email for p in people if refused(p.email)}
    assert summary.this_run["deferred"] == len(retried) > 0
    for address, row in rows(engine).items():
        assert row["attempts"] == (2 if address in retried else 1)
        assert row["last_reply"].startswith("250")


def test_550_fails_the_recipient_marks_5_1_x_bounced_and_never_retries(engine, folder, smtp_server):
    people = crowd(engine, folder, 12)
    attempts: Counter = Counter()
    lock = threading.Lock()
    replies = {people[2].email: "550 5.1.1 <x>: no such user", people[7].email: "552 5.2.2 mailbox full"}

    def reply(envelope):
        with lock:
            attempts[envelope.rcpt_tos[0]] += 1
        return replies.get(envelope.rcpt_tos[0])

    smtp_server.handler.reply = reply
    summary = send(folder, engine, smtp_server)
    send(folder, engine, smtp_server)  # running again retries nothing

    assert summary.finished and summary.tally["sent"] == 10 and summary.tally["failed"] == 2
    assert attempts[people[2].email] == 1 and attempts[people[7].email] == 1
    assert subscribers.by_id(engine, people[2].id).status == subscribers.Status.BOUNCED
    assert subscribers.by_id(engine, people[7].id).status == subscribers.Status.ACTIVE  # 5.2.x is not a hard bounce
    report = ledger.status(engine, DATE)
    failures = {f.email: f.reply for f in report.failures}
    assert failures == {people[2].email: "550 5.1.1 <x>: no such user", people[7].email: "552 5.2.2 mailbox full"}
    assert summary.this_run["bounced"] == 1


def test_a_connection_dropped_during_data_is_retried(engine, folder, smtp_server):
    people = crowd(engine, folder, 20)
    dropped: set[str] = set()
    original = smtp_server.handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        to = envelope.rcpt_tos[0]
        if to not in dropped and len(dropped) < 5:
            dropped.add(to)
            server.transport.abort()  # the data arrived but no reply ever will
            return "250 never seen"
        return await original(server, session, envelope)

    smtp_server.handler.handle_DATA = handle_DATA
    summary = send(folder, engine, smtp_server)

    got = by_recipient(smtp_server)
    assert len(dropped) == 5
    assert summary.finished and summary.tally["sent"] == 20
    assert sorted(got) == sorted(p.email for p in people) and all(len(v) == 1 for v in got.values())
    assert all(rows(engine)[to]["attempts"] == 2 for to in dropped)


def test_4xx_until_max_attempts_fails_without_bouncing(engine, folder, smtp_server):
    stubborn, fine = add(engine, folder, "slow@example.org", "send"), add(engine, folder, "ok@example.org", "send")
    smtp_server.handler.reply = lambda envelope: (
        "450 4.2.1 mailbox busy" if envelope.rcpt_tos == [stubborn.email] else None
    )

    summary = send(folder, engine, smtp_server)

    assert summary.finished and summary.tally["failed"] == 1 and summary.tally["sent"] == 1
    row = rows(engine)[stubborn.email]
    assert (
        row["state"] == "failed"
        and row["attempts"] == FAST.max_attempts
        and row["last_reply"] == "450 4.2.1 mailbox busy"
    )
    assert subscribers.by_id(engine, stubborn.id).status == subscribers.Status.ACTIVE
    assert by_recipient(smtp_server).keys() == {fine.email}


def test_consecutive_errors_pause_the_send_and_a_new_run_resumes_it(engine, folder, smtp_server):
    people = crowd(engine, folder, 15)
    smtp_server.handler.reply = lambda envelope: "421 4.7.28 too many messages, slow down"
    paused = DeliveryOptions(concurrency=2, retry_base=0.05, pause_after_errors=5, poll=0.05)

    with pytest.raises(SendPaused, match=r"5 delivery errors in a row.*421 4\.7\.28"):
        send(folder, engine, smtp_server, paused)

    state = ledger.get_send(engine, DATE)
    assert "421 4.7.28" in state.paused_reason and state.finished_at is None
    tally = ledger.tally(engine, state.id)
    assert tally["sent"] == 0 and tally["failed"] == 0 and tally.open == 15 and tally["sending"] == 0
    assert ledger.active_sends(engine) == []  # workers leave a paused send alone

    smtp_server.handler.reply = None
    summary = send(folder, engine, smtp_server, paused)
    assert summary.finished and summary.tally["sent"] == 15
    assert sorted(by_recipient(smtp_server)) == sorted(p.email for p in people)
    assert ledger.get_send(engine, DATE).paused_reason is None


def test_unsubscribes_and_network_changes_during_a_send_are_honoured(engine, folder, smtp_server):
    leaver = add(engine, folder, "leaver@example.org", "qa-leads")
    mover = add(engine, folder, "mover@example.org", "qa-leads", "fostering")
    stayer = add(engine, folder, "stayer@example.org", "qa-leads")
    ledger.create_send(engine, DATE, folder.issue(DATE).networks or folder.newsletter.network_ids)
    # after the send was created, before these recipients' turn:
    subscribers.set_status(engine, leaver.id, subscribers.Status.UNSUBSCRIBED, reason="one-click")
    subscribers.set_networks(engine, mover.id, ["fostering"], known_networks=folder.newsletter.network_ids)

    summary = send(folder, engine, smtp_server)

    got = by_recipient(smtp_server)
    assert sorted(got) == [mover.email, stayer.email]
    assert QA_ONLY_ITEM not in bodies(parsed(got[mover.email][0]))
    assert QA_ONLY_ITEM in bodies(parsed(got[stayer.email][0]))
    assert summary.tally["suppressed"] == 1 and summary.this_run["suppressed"] == 1
    row = rows(engine)[leaver.email]
    assert row["state"] == "suppressed" and "unsubscribed" in row["last_reply"]
    assert rows(engine)[mover.email]["variant"] == "fostering"


def test_send_to_chosen_networks_only(engine, folder, smtp_server):
    add(engine, folder, "fay@example.org", "fostering")
    add(engine, folder, "quinn@example.org", "qa-leads")

    summary = send(folder, engine, smtp_server, networks=["fostering"])

    assert summary.networks == {"fostering"} and summary.tally.total == 1
    assert sorted(by_recipient(smtp_server)) == ["fay@example.org"]


def test_a_stopped_send_gives_back_its_claims_and_the_next_run_finishes_it(engine, folder, smtp_server):
    people = crowd(engine, folder, 40)
    stopping: dict = {}
    original = smtp_server.handler.handle_DATA

    async def handle_DATA(server, session, envelope):  # asks the sender to stop (as Ctrl-C does) at the 10th message
        answer = await original(server, session, envelope)
        if len(smtp_server.messages) == 10:
            stopping["loop"].call_soon_threadsafe(stopping["event"].set)
        return answer

    smtp_server.handler.handle_DATA = handle_DATA

    async def interrupted():
        stopping["loop"], stopping["event"] = asyncio.get_running_loop(), asyncio.Event()
        async with SMTPTransport(smtp_server.url, pool_size=4) as transport:
            config = SendConfig(SIGNER, FAST)
            return await delivery.send_issue(
                folder, engine, transport, config=config, date=DATE, stop=stopping["event"]
            )

    first = asyncio.run(interrupted())

    assert not first.finished and 10 <= first.this_run["sent"] < 40
    assert first.tally["sending"] == 0 and first.tally["sent"] == first.this_run["sent"] == len(smtp_server.messages)
    second = send(folder, engine, smtp_server)
    assert second.finished and second.this_run["sent"] == 40 - first.this_run["sent"]
    assert Counter(to for m in smtp_server.messages for to in m.rcpt_tos) == Counter({p.email: 1 for p in people})


def test_the_hourly_quota_holds_the_rest_of_a_send_and_a_second_run_too(engine, folder, smtp_server, caplog):
    crowd(engine, folder, 12)
    quota = dataclasses.replace(FAST, per_hour=5, poll=0.25)
    statements = []  # the quota reached, the sender must wait for the hour, not keep asking the ledger
    sa.event.listen(engine, "before_cursor_execute", lambda *_: statements.append(1))

    async def for_a_while():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)  # a second is ample for 12 messages unlimited
        async with SMTPTransport(smtp_server.url, pool_size=4) as transport:
            return await delivery.send_issue(
                folder, engine, transport, config=SendConfig(SIGNER, quota), date=DATE, stop=stop
            )

    first = asyncio.run(for_a_while())
    assert not first.finished and first.this_run["sent"] == 5 == len(smtp_server.messages)
    assert first.tally["queued"] == 7
    [said] = [r.getMessage() for r in caplog.records if "hourly quota" in r.getMessage()]
    assert said.startswith(
        "the hourly quota of 5 messages is used up: the rest of the send goes out as the hour allows"
    )
    assert len(statements) <= 100  # about 55 here; over 190 when it polled without waiting
    again = asyncio.run(for_a_while())  # a restart does not get a fresh hour
    assert again.this_run["sent"] == 0 and len(smtp_server.messages) == 5


def test_backoff_doubles_with_jitter_up_to_a_ceiling():
    options = DeliveryOptions(retry_base=2.0, retry_max=60.0)
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        delays = [options.backoff(attempts) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered: retries do not arrive together


def test_a_network_the_issue_does_not_go_to_is_refused(engine, folder):
    with pytest.raises(SubscriberError, match="does not go to nowhere"):
        asyncio.run(
            delivery.send_issue(folder, engine, MemoryTransport(), config=CONFIG, date=DATE, networks=["nowhere"])
        )
    assert ledger.get_send(engine, DATE) is None


def own_templates(example_dir, change) -> None:
    """Give the folder its own templates/email: the defaults with `change(text_template)` applied."""
    from newsletter.render import TEMPLATES

    target = example_dir / "templates" / "email"
    shutil.copytree(TEMPLATES, target)
    text = target / "issue.txt.j2"
    text.write_text(change(text.read_text(encoding="utf-8")), encoding="utf-8")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_folder_s_own_templates_are_sent(example_dir, engine, smtp_server):
    own_templates(example_dir, lambda t: "Our own words.\n" + t)
    folder = load_folder(example_dir)
    add(engine, folder, "jo@example.org", "fostering")
    send(folder, engine, smtp_server)
    (received,) = smtp_server.messages
    assert parsed(received).get_body(("plain",)).get_content().startswith("Our own words.")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_template_without_unsubscribe_link_stops_the_send_and_fails_nobody(example_dir, engine, smtp_server):
    own_templates(example_dir, lambda t: t.replace("Unsubscribe: {{ unsubscribe_url }}", ""))
    folder = load_folder(example_dir)
    for i in range(3):
        add(engine, folder, f"reader{i}@example.org", "fostering")
    with pytest.raises(ConfigError, match="text part has no unsubscribe link"):
        send(folder, engine, smtp_server)
    assert smtp_server.messages == []
    assert {r["state"] for r in rows(engine).values()} <= {"queued", "sending"}


# sends that go nowhere leave nothing behind --------------------------------------------------------------


def test_a_send_to_nobody_is_refused_recorded_nowhere_and_one_after_adding_readers_reaches_them(
    engine, folder, smtp_server
):
    with pytest.raises(NoRecipients) as refused:
        send(folder, engine, smtp_server)
    assert refused.value.issue_date == DATE and "fostering" in refused.value.networks
    assert ledger.get_send(engine, DATE) is None and ledger.sent_issues(engine) == {}

    add(engine, folder, "jo@example.org", "fostering")
    summary = send(folder, engine, smtp_server)
    assert summary.finished and summary.tally["sent"] == 1
    assert [m.rcpt_tos for m in smtp_server.messages] == [["jo@example.org"]]


def test_a_send_an_older_version_recorded_for_nobody_is_replaced(engine, folder, smtp_server):
    """Such a send "finished" with 0 recipients and kept the issue from anyone for good."""
    with engine.begin() as conn:
        conn.execute(
            ledger.sends_table.insert().values(
                issue_date=DATE, networks="fostering", started_at=ledger.now(), finished_at=ledger.now()
            )
        )
    add(engine, folder, "jo@example.org", "fostering")
    summary = send(folder, engine, smtp_server)
    assert summary.tally["sent"] == 1 and len(smtp_server.messages) == 1


def test_audience_counts_whom_a_send_would_reach_and_sends_nothing(engine, folder):
    add(engine, folder, "jo@example.org", "fostering", "qa-leads")
    add(engine, folder, "sam@example.org", "qa-leads")
    left = add(engine, folder, "al@example.org", "fostering")
    subscribers.set_status(engine, left.id, subscribers.Status.UNSUBSCRIBED, reason="test")
    assert delivery.audience(folder, engine, date=DATE).count == 2
    assert delivery.audience(folder, engine, date=DATE, networks=["fostering"]).count == 1
    with pytest.raises(NoRecipients):
        delivery.audience(folder, engine, date=DATE, networks=["adoption"]).require()
    assert ledger.get_send(engine, DATE) is None


def test_the_issue_due_is_the_newest_not_after_today_until_its_send_finishes(engine, folder):
    nov20, nov27 = dt.date(2026, 11, 20), DATE
    assert delivery.due_date(folder, engine, today=dt.date(2026, 11, 30)) == nov27
    assert delivery.due_date(folder, engine, today=nov27) == nov27
    assert delivery.due_date(folder, engine, today=dt.date(2026, 11, 26)) == nov20  # never the future one
    with pytest.raises(NotFound, match=r"no issue is dated 2026-11-19 or earlier; the next is the issue of 2026-11-20"):
        delivery.due_date(folder, engine, today=dt.date(2026, 11, 19))

    add(engine, folder, "jo@example.org", "fostering")
    ledger.create_send(engine, nov27, ["fostering"])
    assert delivery.due_date(folder, engine, today=dt.date(2026, 11, 30)) == nov27  # unfinished: finish it
    with engine.begin() as conn:
        conn.execute(ledger.sends_table.update().values(finished_at=ledger.now()))
    with pytest.raises(NotFound, match=r"the issue of 2026-11-27 was sent on .*and no later issue file is written yet"):
        delivery.due_date(folder, engine, today=dt.date(2026, 11, 30))


def test_a_send_whose_template_fails_leaves_no_trace_in_the_ledger_or_the_archive(example_dir, engine, smtp_server):
    own_templates(example_dir, lambda t: t.replace("Unsubscribe: {{ unsubscribe_url }}", ""))
    folder = load_folder(example_dir)
    add(engine, folder, "jo@example.org", "fostering")
    with pytest.raises(ConfigError):
        send(folder, engine, smtp_server)
    assert ledger.get_send(engine, DATE) is None and rows(engine) == {}
    assert ledger.sent_issues(engine) == {}


def test_a_send_that_cannot_reach_its_relay_is_kept_paused_but_not_in_the_archive(engine, folder, smtp_server):
    add(engine, folder, "jo@example.org", "fostering")
    add(engine, folder, "sam@example.org", "fostering")
    nowhere = dataclasses.replace(smtp_server, port=free_port())  # nothing listens there
    with pytest.raises(SendPaused):
        send(folder, engine, nowhere, dataclasses.replace(FAST, pause_after_errors=2, concurrency=1))
    assert ledger.get_send(engine, DATE).paused_reason  # `newsletter status` shows why; a send again resumes
    assert ledger.sent_issues(engine) == {}

    summary = send(folder, engine, smtp_server)
    assert summary.finished and summary.tally["sent"] == 2
    assert list(ledger.sent_issues(engine)) == [DATE]


# a misbehaving relay ---------------------------------------------------------------------------


def refusing(server, stage: str, answer: str) -> None:
    """Make `server` answer `answer` (with the recipient's address for {to}) at RCPT or DATA, to everyone."""
    if stage == "DATA":
        server.handler.reply = lambda envelope: answer.format(to=envelope.rcpt_tos[0])
        return

    async def handle_RCPT(server_, session, envelope, address, rcpt_options):
        return answer.format(to=address)

    server.handler.handle_RCPT = handle_RCPT


def fixed(server) -> None:
    server.handler.reply = None
    server.handler.__dict__.pop("handle_RCPT", None)


@pytest.mark.parametrize(
    ("stage", "answer", "said"),
    [
        ("DATA", "554 5.6.0 content rejected", "refused 5 different recipients in a row with 554 5.6.0"),
        ("RCPT", "554 5.7.1 <{to}>: Relay access denied", "the relay refused the send itself"),
        ("RCPT", "550 5.1.1 <{to}>: Recipient address rejected: User unknown", "in a row with 550 5.1.1"),
    ],
)
def test_a_relay_refusing_everyone_pauses_the_send_and_fails_nobody(engine, folder, smtp_server, stage, answer, said):
    people = crowd(engine, folder, 50)
    refusing(smtp_server, stage, answer)
    options = DeliveryOptions(concurrency=4, retry_base=0.05, pause_after_errors=1000, poll=0.05, relay_fault_after=5)

    with pytest.raises(SendPaused, match=said) as caught:
        send(folder, engine, smtp_server, options)

    assert "not the readers" in str(caught.value) or "not the reader" in str(caught.value)
    state = ledger.get_send(engine, DATE)
    assert state.paused_reason and state.finished_at is None
    assert {r["state"] for r in rows(engine).values()} == {"queued"}  # the ones refused before it was clear too
    assert {r["attempts"] for r in rows(engine).values()} == {0}
    assert all(subscribers.by_id(engine, p.id).status == subscribers.Status.ACTIVE for p in people)

    fixed(smtp_server)
    summary = send(folder, engine, smtp_server, options)

    assert summary.finished and summary.tally["sent"] == 50 and summary.tally["failed"] == 0
    assert Counter(to for m in smtp_server.messages for to in m.rcpt_tos) == Counter({p.email: 1 for p in people})
    assert all(subscribers.by_id(engine, p.id).status == subscribers.Status.ACTIVE for p in people)


def test_genuine_bounces_fewer_than_the_relay_fault_threshold_in_a_row_are_bounced(engine, folder, smtp_server):
    people = crowd(engine, folder, 8)
    gone = {p.email for p in people[1:5]} | {people[7].email}  # four in a row, and the last one of the send
    smtp_server.handler.reply = lambda e: (
        f"550 5.1.1 <{e.rcpt_tos[0]}>: no such user" if e.rcpt_tos[0] in gone else None
    )
    options = DeliveryOptions(concurrency=1, pause_after_errors=1000, poll=0.05, relay_fault_after=5)

    summary = send(folder, engine, smtp_server, options)

    assert summary.finished and summary.tally["sent"] == 3 and summary.tally["failed"] == 5
    assert summary.this_run["bounced"] == 5
    assert {p.email for p in people if subscribers.by_id(engine, p.id).status == subscribers.Status.BOUNCED} == gone


@contextlib.contextmanager
def stalling(greeting: bytes | None):
    """A TCP server on 127.0.0.1 that accepts and then says nothing (or only `greeting`); yields its smtp:// URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(connection)
            if greeting:
                connection.sendall(greeting)

    thread = threading.Thread(target=accept, daemon=True)
    if greeting is not None:
        thread.start()  # else nobody accepts: the kernel completes the handshake and nothing more happens
    try:
        yield f"smtp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        if thread.is_alive():
            thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


@pytest.mark.parametrize("greeting", [None, b"220 relay.example ESMTP\r\n"], ids=["silent", "greets-then-stalls"])
def test_a_relay_that_never_answers_pauses_the_send_within_a_bound(engine, folder, greeting):
    crowd(engine, folder, 20)
    options = DeliveryOptions(concurrency=4, retry_base=0.05, pause_after_errors=1000, poll=0.05, relay_fault_after=5)

    async def run(url: str):
        async with SMTPTransport(url, pool_size=4, timeout=1) as transport:
            return await delivery.send_issue(folder, engine, transport, config=SendConfig(SIGNER, options), date=DATE)

    started = time.monotonic()
    with stalling(greeting) as url, pytest.raises(SendPaused, match="stopped answering 5 times in a row"):
        asyncio.run(run(url))
    assert time.monotonic() - started < 20  # about 2 s: two rounds of 1 s timeouts (392 s before)
    assert {r["state"] for r in rows(engine).values()} <= {"queued", "deferred"}
    assert {r["attempts"] for r in rows(engine).values()} == {0}  # the relay's failures are no reader's attempts


def test_an_international_domain_travels_as_idna_without_smtputf8(engine, folder):
    from aiosmtpd.controller import Controller
    from conftest import RecordingHandler, free_port

    reader = add(engine, folder, "anwen@bücher.example", "fostering", name="Anwen")
    seen: list[tuple[str, list[str]]] = []

    class Handler(RecordingHandler):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            seen.append((address, list(envelope.mail_options)))
            envelope.rcpt_tos.append(address)
            return "250 OK"

    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), decode_data=False, enable_SMTPUTF8=False)
    controller.start()
    try:
        summary = send(folder, engine, SimpleNamespace(url=f"smtp://127.0.0.1:{controller.port}"))
    finally:
        controller.stop()

    assert summary.tally["sent"] == 1
    [(address, options)] = seen
    assert address == "anwen@xn--bcher-kva.example" and "SMTPUTF8" not in options
    message = parsed(handler.messages[0])
    assert message["To"] == "Anwen <anwen@xn--bcher-kva.example>"
    token = message["List-Unsubscribe"].split("/unsubscribe/")[1].split(">")[0]
    assert SIGNER.verify(token, reader.email).subscriber_id == reader.id  # the link still names the stored address
