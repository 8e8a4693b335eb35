"""The delivery ledger on SQLite and PostgreSQL: one send per issue, exclusive claims, leases, recovery from dead claimants."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from newsletter import ledger, subscribers
from newsletter.errors import NotFound, SendConflict
from newsletter.ledger import Outcome, State

DATE = dt.date(2026, 11, 27)
NETWORKS = ["fostering", "qa-leads", "send"]
LEASE = dt.timedelta(seconds=60)


def people(engine, count: int) -> list[subscribers.Subscriber]:
    return [
        subscribers.add(engine, f"p{i:03d}@example.org", networks=[NETWORKS[i % 3]], known_networks=NETWORKS)
        for i in range(count)
    ]


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            r._asdict() for r in conn.execute(ledger.deliveries_table.select().order_by(ledger.deliveries_table.c.id))
        ]


def together(count: int, target) -> None:
    """`target(index)` in `count` threads, released at the same moment; returns when all have finished."""
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        target(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_a_send_is_created_once_with_a_row_per_active_recipient(engine):
    crowd = people(engine, 9)
    subscribers.set_status(engine, crowd[0].id, subscribers.Status.UNSUBSCRIBED, reason="test")

    send, created = ledger.create_send(engine, DATE, ["fostering", "qa-leads"])
    again, created_again = ledger.create_send(engine, DATE, ["qa-leads", "fostering"])

    assert created and not created_again and again == send
    expected = {p.email for p in crowd[1:] if p.networks & {"fostering", "qa-leads"}}
    assert {r["email"] for r in rows(engine)} == expected
    assert all(r["state"] == "queued" and r["attempts"] == 0 for r in rows(engine))
    with pytest.raises(SendConflict, match="already being sent to fostering, qa-leads"):
        ledger.create_send(engine, DATE, ["send"])


def test_concurrent_creators_agree_on_one_send(engine):
    people(engine, 30)
    results = []
    together(4, lambda _: results.append(ledger.create_send(engine, DATE, NETWORKS)))
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({send.id for send, _ in results}) == 1
    assert len(rows(engine)) == 30


def test_concurrent_claimants_never_share_a_row(engine):
    people(engine, 90)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    taken: list[list[int]] = [[] for _ in range(4)]

    def claimant(index: int):
        while True:
            claims, _ = ledger.claim(engine, send, worker=f"w{index}", limit=7, lease=LEASE)
            if not claims:
                return
            taken[index].extend(c.subscriber_id for c in claims)
            ledger.record(engine, [Outcome(c.delivery_id, State.SENT, 1, "250 ok") for c in claims], worker=f"w{index}")

    together(4, claimant)
    everyone = [sid for batch in taken for sid in batch]
    assert len(everyone) == len(set(everyone)) == 90
    assert ledger.tally(engine, send.id)["sent"] == 90
    assert ledger.finish(engine, send.id)


def test_a_claim_is_held_until_its_lease_runs_out(engine):
    people(engine, 3)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    first, _ = ledger.claim(engine, send, worker="a", limit=10, lease=LEASE)
    assert len(first) == 3
    assert ledger.claim(engine, send, worker="b", limit=10, lease=LEASE) == ([], 0)

    with engine.begin() as conn:  # "a" stopped renewing two minutes ago
        conn.execute(ledger.deliveries_table.update().values(claimed_at=ledger.now() - dt.timedelta(minutes=2)))
    ledger.renew(engine, worker="nobody")
    second, _ = ledger.claim(engine, send, worker="b", limit=10, lease=LEASE)
    assert [c.subscriber_id for c in second] == [c.subscriber_id for c in first]

    # "a" comes back: its late results must not overwrite what "b" now holds
    ledger.record(engine, [Outcome(c.delivery_id, State.FAILED, 1, "550 late") for c in first], worker="a")
    assert {r["state"] for r in rows(engine)} == {"sending"}
    ledger.record(engine, [Outcome(c.delivery_id, State.SENT, 1, "250 ok", "id@x") for c in second], worker="b")
    assert {r["state"] for r in rows(engine)} == {"sent"}


def test_rows_of_a_killed_process_on_this_host_are_freed_at_once(engine):
    people(engine, 4)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = ledger.worker_id().split(":")[0]
    ledger.claim(engine, send, worker=f"{host}:{dead.pid}:abc", limit=2, lease=LEASE)
    ledger.claim(engine, send, worker=ledger.worker_id(), limit=1, lease=LEASE)  # alive: this process
    ledger.claim(
        engine, send, worker=f"elsewhere:{dead.pid}:abc", limit=1, lease=LEASE
    )  # another host: wait for its lease

    assert ledger.release_dead(engine, send.id) == 2
    assert Counter(r["state"] for r in rows(engine)) == {"queued": 2, "sending": 2}


def test_deferred_rows_wait_for_their_retry_time(engine):
    people(engine, 2)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    claims, _ = ledger.claim(engine, send, worker="a", limit=2, lease=LEASE)
    later = ledger.now() + dt.timedelta(seconds=30)
    ledger.record(
        engine, [Outcome(c.delivery_id, State.DEFERRED, 1, "451 later", None, later) for c in claims], worker="a"
    )

    assert ledger.claim(engine, send, worker="a", limit=2, lease=LEASE) == ([], 0)
    assert abs((ledger.next_due(engine, send.id, lease=LEASE) - later).total_seconds()) < 0.01
    assert not ledger.finish(engine, send.id)
    with engine.begin() as conn:
        conn.execute(ledger.deliveries_table.update().values(next_attempt_at=ledger.now()))
    again, _ = ledger.claim(engine, send, worker="a", limit=2, lease=LEASE)
    assert [c.attempts for c in again] == [1, 1]
    assert ledger.release(engine, worker="a") == 2
    assert {r["state"] for r in rows(engine)} == {"deferred"}  # given back, still counted as retried


def test_the_hourly_quota_counts_what_was_sent_or_is_in_flight_in_every_send(engine):
    people(engine, 12)
    last_week, _ = ledger.create_send(engine, DATE - dt.timedelta(days=7), NETWORKS)
    old, _ = ledger.claim(engine, last_week, worker="a", limit=2, lease=LEASE)
    ledger.record(engine, [Outcome(c.delivery_id, State.SENT, 1, "250 ok") for c in old], worker="a")
    send, _ = ledger.create_send(engine, DATE, NETWORKS)

    first, _ = ledger.claim(engine, send, worker="b", limit=3, lease=LEASE, per_hour=6)
    assert len(first) == 3  # 2 sent last week's send within the hour, 3 now in flight
    assert len(ledger.claim(engine, send, worker="b", limit=3, lease=LEASE, per_hour=6)[0]) == 1
    assert ledger.claim(engine, send, worker="c", limit=3, lease=LEASE, per_hour=6) == ([], 0)

    with engine.begin() as conn:  # last week's two left the hour
        conn.execute(
            ledger.deliveries_table.update()
            .where(ledger.deliveries_table.c.send_id == last_week.id)
            .values(sent_at=ledger.now() - dt.timedelta(minutes=61))
        )
    assert len(ledger.claim(engine, send, worker="c", limit=3, lease=LEASE, per_hour=6)[0]) == 2
    assert len(ledger.claim(engine, send, worker="c", limit=3, lease=LEASE)[0]) == 3  # no quota: the limit alone


def test_when_the_hourly_quota_has_room_again(engine):
    people(engine, 5)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    room = lambda: ledger.hourly_room_at(engine, per_hour=3, lease=LEASE)  # noqa: E731
    assert abs((room() - ledger.now()).total_seconds()) < 1  # nothing sent yet
    claims, _ = ledger.claim(engine, send, worker="a", limit=3, lease=LEASE, per_hour=3)
    assert 0 < (room() - ledger.now()).total_seconds() <= 1  # full, in flight: look again shortly
    ledger.record(engine, [Outcome(c.delivery_id, State.SENT, 1, "250 ok") for c in claims], worker="a")
    minutes_ago = [50, 20, 5]  # the oldest of the three leaves the hour first
    with engine.begin() as conn:
        for claim, minutes in zip(claims, minutes_ago, strict=True):
            conn.execute(
                ledger.deliveries_table.update()
                .where(ledger.deliveries_table.c.id == claim.delivery_id)
                .values(sent_at=ledger.now() - dt.timedelta(minutes=minutes))
            )
    assert abs((room() - ledger.now()).total_seconds() - 10 * 60) < 5
    assert abs((ledger.hourly_room_at(engine, per_hour=2, lease=LEASE) - ledger.now()).total_seconds() - 40 * 60) < 5


def test_concurrent_claimants_keep_to_the_hourly_quota_together(engine):
    people(engine, 60)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    taken: list[int] = []

    def claimant(index: int):
        for _ in range(10):
            claims, _ = ledger.claim(engine, send, worker=f"w{index}", limit=3, lease=LEASE, per_hour=20)
            taken.extend(c.subscriber_id for c in claims)
            ledger.record(engine, [Outcome(c.delivery_id, State.SENT, 1, "250 ok") for c in claims], worker=f"w{index}")

    together(4, claimant)
    assert len(taken) == len(set(taken)) == 20


def test_status_per_network_and_failures(engine):
    crowd = people(engine, 6)  # fostering: 0, 3; qa-leads: 1, 4; send: 2, 5
    subscribers.set_networks(engine, crowd[1].id, ["qa-leads", "fostering"], known_networks=NETWORKS)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    claims, _ = ledger.claim(engine, send, worker="a", limit=3, lease=LEASE)
    outcomes = [
        Outcome(claims[0].delivery_id, State.SENT, 1, "250 ok"),
        Outcome(claims[1].delivery_id, State.FAILED, 1, "550 5.1.1 unknown user"),
        Outcome(claims[2].delivery_id, State.DEFERRED, 1, "451 later", None, ledger.now()),
    ]
    ledger.record(engine, outcomes, worker="a")

    report = ledger.status(engine, DATE)
    assert report.total.counts == {"sent": 1, "failed": 1, "deferred": 1, "queued": 3}
    assert report.networks["fostering"].counts == {"sent": 1, "failed": 1, "queued": 1}
    assert report.networks["qa-leads"].counts == {"failed": 1, "queued": 1}
    assert report.networks["send"].counts == {"deferred": 1, "queued": 1}
    assert [(f.email, f.reply, f.networks) for f in report.failures] == [
        (crowd[1].email, "550 5.1.1 unknown user", frozenset({"qa-leads", "fostering"}))
    ]
    with pytest.raises(NotFound):
        ledger.status(engine, DATE + dt.timedelta(days=7))


def test_failed_rows_of_active_readers_are_queued_again_and_the_send_reopened(engine):
    crowd = people(engine, 5)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    claims, _ = ledger.claim(engine, send, worker="a", limit=5, lease=LEASE)
    states = [State.SENT, State.FAILED, State.FAILED, State.FAILED, State.FAILED]
    ledger.record(
        engine,
        [Outcome(c.delivery_id, s, 3, "552 5.2.2 full") for c, s in zip(claims, states, strict=True)],
        worker="a",
    )
    subscribers.set_status(engine, crowd[3].id, subscribers.Status.BOUNCED, reason="550 5.1.1")
    subscribers.set_status(engine, crowd[4].id, subscribers.Status.UNSUBSCRIBED, reason="one-click")
    assert ledger.finish(engine, send.id)

    assert ledger.requeue_failed(engine, send.id) == 2

    by_email = {r["email"]: r for r in rows(engine)}
    assert [by_email[p.email]["state"] for p in crowd] == ["sent", "queued", "queued", "failed", "failed"]
    assert by_email[crowd[1].email]["attempts"] == 0  # a fresh set of attempts
    assert ledger.send_by_id(engine, send.id).finished_at is None
    report = ledger.status(engine, DATE)
    assert report.requeued.counts == {"queued": 2} and report.requeued_at is not None
    assert ledger.requeue_failed(engine, send.id) == 0  # nothing failed is left but the suppressed readers


def test_requeue_puts_back_only_this_worker_s_failed_rows(engine):
    people(engine, 3)
    send, _ = ledger.create_send(engine, DATE, NETWORKS)
    mine, _ = ledger.claim(engine, send, worker="a", limit=2, lease=LEASE)
    theirs, _ = ledger.claim(engine, send, worker="b", limit=1, lease=LEASE)
    ledger.record(engine, [Outcome(mine[0].delivery_id, State.FAILED, 1, "554 5.6.0")], worker="a")
    ledger.record(engine, [Outcome(mine[1].delivery_id, State.SENT, 1, "250 ok")], worker="a")
    ledger.record(engine, [Outcome(theirs[0].delivery_id, State.FAILED, 1, "554 5.6.0")], worker="b")

    assert ledger.requeue(engine, [c.delivery_id for c in mine + theirs], worker="a") == 1
    assert [r["state"] for r in rows(engine)] == ["queued", "sent", "failed"]
    assert ledger.status(engine, DATE).requeued.total == 0  # the engine's own, not --retry-failed


def test_the_ledger_schema_matches_its_migration(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from newsletter.store import metadata

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if "deliveries" in repr(d) or "sends" in repr(d)] == []
    assert sa.inspect(engine).has_table("deliveries")
