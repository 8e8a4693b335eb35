"""`newsletter send` SIGKILLed at random moments and run again: nobody lost, only messages in flight sent twice.

The moments come from CRASH_SEED (a fixed default, so a run is repeatable). The seed and the moments are printed
and recorded as test properties, and every failure message says how to replay it:
`CRASH_SEED=<n> pytest tests/test_crash.py`.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import pytest

from newsletter import importer, ledger
from newsletter.folder import load_newsletter
from newsletter.store import open_store

POOL = 4
RECIPIENTS = 200
CLI = [sys.executable, "-m", "newsletter"]
DEFAULT_SEED = 20261127


def write_subscribers(root, count: int, database_url: str) -> None:
    networks = sorted(n.id for n in load_newsletter(root)[0].networks)
    lines = ["email,name,organisation,networks"]
    lines += [
        f"reader{i:03d}@example.org,Reader {i},Council {i % 7},{networks[i % 8]};{networks[(i * 5) % 8]}"
        for i in range(count)
    ]
    path = root / "subscribers" / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    engine = open_store(database_url)
    try:
        report = importer.import_csv(engine, path, known_networks=networks)
    finally:
        engine.dispose()
    assert report.added == count


@pytest.fixture
def slow_server(smtp_server):
    """The test server taking a few milliseconds per message, like a real relay, so a send lasts long enough to kill."""
    original = smtp_server.handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        await asyncio.sleep(0.004)
        return await original(server, session, envelope)

    smtp_server.handler.handle_DATA = handle_DATA
    return smtp_server


def crash_seed() -> int:
    """The seed of the kill moments: CRASH_SEED when set (to replay or explore), else the fixed default."""
    raw = os.environ.get("CRASH_SEED") or str(DEFAULT_SEED)
    if not raw.isdigit():
        pytest.fail(f"CRASH_SEED: expected a whole number, got {raw!r}", pytrace=False)
    return int(raw)


def test_a_send_killed_at_random_moments_finishes_with_nobody_lost(
    example_dir, slow_server, database_url, record_property
):
    write_subscribers(example_dir, RECIPIENTS, database_url)
    env = {
        **os.environ,
        "NEWSLETTER_SMTP_URL": slow_server.url,
        "NEWSLETTER_SECRET_KEY": "crash-test-key, 32 characters or more",
        "NEWSLETTER_SMTP_POOL": str(POOL),
        "NEWSLETTER_RETRY_BASE_SECONDS": "0.05",
        "NEWSLETTER_DATABASE_URL": database_url,
    }
    command = [*CLI, "send", "--dir", str(example_dir), "--date", "2026-11-27"]  # a finished send is not "due"
    seed = crash_seed()
    rng = random.Random(seed)
    record_property("crash_seed", seed)
    moments: list[str] = []  # what each run was doing when it was killed, for the failure message

    def replay() -> str:
        return f"CRASH_SEED={seed} (replay: CRASH_SEED={seed} pytest tests/test_crash.py); kills: {'; '.join(moments)}"

    print(f"CRASH_SEED={seed}")

    def kill_when(condition: Callable[[], bool], deadline: float, planned: str) -> bool:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.monotonic()
        while process.poll() is None and not condition() and time.monotonic() < start + deadline:
            time.sleep(0.001)
        if process.poll() is not None:
            moments.append(f"{planned}: finished first")
            return False
        process.send_signal(signal.SIGKILL)
        process.wait()  # reaped, so the next run sees the process is gone
        elapsed = time.monotonic() - start
        moments.append(f"{planned}: killed after {elapsed:.3f}s at {len(slow_server.messages)} received")
        return True

    # Once at a random moment from start-up on (loading, creating the send, the first claims)...
    delay = rng.uniform(0.2, 1.5)
    kills = int(kill_when(lambda: False, delay, f"at {delay:.3f}s"))
    # ...then several times in the middle of sending.
    for _ in range(4):
        target = min(RECIPIENTS - 10, len(slow_server.messages) + rng.randint(5, 35))
        kills += kill_when(lambda target=target: len(slow_server.messages) >= target, 20, f"at {target} received")
    record_property("crash_moments", moments)
    print(replay())

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, f"{final.stderr}\n{replay()}"

    per_recipient = Counter(to for m in slow_server.messages for to in m.rcpt_tos)
    expected = {f"reader{i:03d}@example.org" for i in range(RECIPIENTS)}
    assert set(per_recipient) == expected, f"lost: {sorted(expected - set(per_recipient))}; {replay()}"
    duplicates = sum(n - 1 for n in per_recipient.values())
    print(f"{kills} kills, {duplicates} duplicates, {len(slow_server.messages)} messages received")
    assert kills >= 4, replay()
    assert duplicates <= kills * POOL, f"{duplicates} duplicates after {kills} kills; {replay()}"
    # a message sent again is the same message: receivers can drop it by its Message-ID
    ids: dict[str, set[bytes]] = {}
    for message in slow_server.messages:
        header = next(line for line in message.data.split(b"\r\n") if line.lower().startswith(b"message-id:"))
        ids.setdefault(message.rcpt_tos[0], set()).add(header)
    assert all(len(v) == 1 for v in ids.values()), f"a resend carried a new Message-ID; {replay()}"

    engine = open_store(database_url)
    try:
        send = ledger.latest_send(engine)
        tally = ledger.tally(engine, send.id)
        assert send.finished_at is not None and tally["sent"] == RECIPIENTS == tally.total, replay()
    finally:
        engine.dispose()
