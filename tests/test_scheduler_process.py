"""scheduler.py as a real process: a per-minute schedule delivers today's issue to aiosmtpd, once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from newsletter import ledger
from newsletter.folder import load_newsletter
from newsletter.importer import import_csv
from newsletter.store import open_store

ROOT = Path(__file__).resolve().parent.parent


def zone_away_from_midnight() -> str:
    """A zone where the next few minutes stay on today's date, so 'the issue dated today' is one issue."""
    for name in ("Europe/London", "Asia/Tokyo"):
        local = dt.datetime.now(ZoneInfo(name))
        if local.hour != 23 or local.minute < 56:
            return name
    raise AssertionError("unreachable: London and Tokyo are not both before midnight")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # as docker-compose.yml runs it
def test_scheduler_process_delivers_todays_issue_within_75_seconds(example_dir, database_url, smtp_server):
    zone = zone_away_from_midnight()
    config = yaml.safe_load((example_dir / "newsletter.yaml").read_text())
    config["schedule"] = {"cron": "* * * * *", "timezone": zone}
    (example_dir / "newsletter.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    today = dt.datetime.now(ZoneInfo(zone)).date()
    (example_dir / "content" / "issues" / f"{today}.yaml").write_text(
        yaml.safe_dump(
            {
                "number": 500,
                "date": today.isoformat(),
                "items": [{"programme": "Sent by the scheduler", "update": "This issue went out on its own."}],
            }
        )
    )

    url = database_url
    engine = open_store(url)
    newsletter, _ = load_newsletter(example_dir)
    import_csv(engine, example_dir / "subscribers" / "network-members.csv", known_networks=newsletter.network_ids)

    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": url,
        "NEWSLETTER_SMTP_URL": smtp_server.url,
        "NEWSLETTER_SECRET_KEY": "process test key, 32 characters or more",
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scheduler.py"), "--dir", str(example_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        send = None
        while time.monotonic() - started < 75 and process.poll() is None:
            send = ledger.get_send(engine, today)
            if send is not None and send.finished_at is not None:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        assert process.poll() is None, process.communicate()
        assert send is not None and send.finished_at is not None, f"nothing sent after {elapsed:.0f}s"
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err

    with engine.connect() as conn:
        expected = (
            conn.execute(sa.select(ledger.deliveries_table.c.email).where(ledger.deliveries_table.c.send_id == send.id))
            .scalars()
            .all()
        )
    engine.dispose()
    received = [r for m in smtp_server.messages for r in m.rcpt_tos]
    assert expected and sorted(received) == sorted(expected)  # each subscriber once, and nobody else (no notice)
    assert b"Update No 500" in smtp_server.messages[0].data
    assert f"(issue {today}): sent:" in err
    assert "scheduler started: * * * * * in " + zone in err
