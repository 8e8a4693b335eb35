"""Three `newsletter worker` processes sharing one send on PostgreSQL: each recipient exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from newsletter import importer, ledger
from newsletter.folder import load_folder
from newsletter.store import open_store

CLI = [sys.executable, "-m", "newsletter"]
DATE = dt.date(2026, 11, 27)
RECIPIENTS = 200


class Worker:
    """A `newsletter worker` subprocess whose stderr lines are collected as they come."""

    def __init__(self, root, env):
        self.process = subprocess.Popen(
            [*CLI, "worker", "--dir", str(root)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.reader.join(5)
        self.process.stderr.close()
        return code


def wait_for(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_workers_share_a_send_and_send_each_recipient_once(database_url, example_dir, smtp_server):
    original = smtp_server.handler.handle_DATA

    async def handle_DATA(server, session, envelope):  # a relay's latency, so the send outlasts the workers' start-up
        await asyncio.sleep(0.02)
        return await original(server, session, envelope)

    smtp_server.handler.handle_DATA = handle_DATA
    folder = load_folder(example_dir)
    networks = sorted(folder.newsletter.network_ids)
    csv = example_dir / "subscribers" / "many.csv"
    csv.write_text(
        "email,name,organisation,networks\n"
        + "".join(f"r{i:03d}@example.org,R {i},,{networks[i % 8]}\n" for i in range(RECIPIENTS))
    )
    engine = open_store(database_url)
    try:
        assert importer.import_csv(engine, csv, known_networks=networks).added == RECIPIENTS
        env = {
            **os.environ,
            "NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_SMTP_URL": smtp_server.url,
            "NEWSLETTER_SECRET_KEY": "workers-test-key, 32 characters or more",
            "NEWSLETTER_SMTP_POOL": "2",
        }
        workers = [Worker(example_dir, env) for _ in range(3)]
        try:
            wait_for(lambda: all(w.said("waiting for a send") for w in workers), 30, "the workers to start")
            send, created = ledger.create_send(engine, DATE, networks)
            assert created
            wait_for(lambda: ledger.send_by_id(engine, send.id).finished_at is not None, 60, "the send to finish")
        finally:
            codes = [w.stop() for w in workers]
        assert codes == [0, 0, 0], [w.lines for w in workers]

        received = Counter(to for m in smtp_server.messages for to in m.rcpt_tos)
        assert received == Counter({f"r{i:03d}@example.org": 1 for i in range(RECIPIENTS)})
        with engine.connect() as conn:
            D = ledger.deliveries_table
            shares = dict(conn.execute(sa.select(D.c.claimed_by, sa.func.count()).group_by(D.c.claimed_by)).all())
        print("messages sent per worker:", sorted(shares.values()))
        assert len(shares) >= 2, "the work was not shared"
        assert ledger.tally(engine, send.id)["sent"] == RECIPIENTS
    finally:
        engine.dispose()
