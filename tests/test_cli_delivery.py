"""`newsletter send` (outbox default, --test, --dry-run), `newsletter status`, read back from files and a real SMTP server."""

from __future__ import annotations

import datetime as dt
import email
import os
import select
import subprocess
import sys
import time
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml
from conftest import import_members

from newsletter import ledger
from newsletter.cli import main
from newsletter.store import open_store
from newsletter.tokens import Signer

QA_ONLY_ITEM = "Preventing exploitation outside the home"
EXAMPLE_RECIPIENTS = 12


@pytest.fixture
def env(monkeypatch):
    """No NEWSLETTER_* settings from the machine running the tests: the embedded defaults."""
    for name in (
        "DATABASE_URL",
        "SECRET_KEY",
        "SMTP_URL",
        "OUTBOX_DIR",
        "DKIM_KEY_FILE",
        "BOUNCE_ADDRESS",
        "SMTP_POOL",
    ):
        monkeypatch.delenv(f"NEWSLETTER_{name}", raising=False)
    return monkeypatch


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_send_to_the_outbox_on_the_embedded_defaults_then_again_sends_nobody(env, capsys, example_dir):
    import_members(capsys, example_dir)

    code, out, err = run(capsys, "send", "--dir", str(example_dir))

    assert code == 0, err
    assert "generated a development key" in err
    outbox = sorted((example_dir / "outbox").glob("*.eml"))
    assert len(outbox) == EXAMPLE_RECIPIENTS
    assert f"{EXAMPLE_RECIPIENTS} sent, 0 failed" in out
    key = (example_dir / ".secret_key").read_text().strip()
    message = email.message_from_bytes(outbox[0].read_bytes(), policy=policy.default)
    token = message["List-Unsubscribe"].split("/unsubscribe/")[1].split(">")[0]
    Signer(key).verify(token, message["To"].addresses[0].addr_spec)  # links work with the kept key

    code, out, err = run(capsys, "send", "--dir", str(example_dir))  # nothing is due: the newest was sent
    assert code == 1 and err.startswith("error: no issue is due: the issue of 2026-11-27 was sent on ")
    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--date", "2026-11-27")
    assert code == 0 and "this run: 0 sent" in out and "generated" not in err
    assert len(list((example_dir / "outbox").glob("*.eml"))) == EXAMPLE_RECIPIENTS

    code, out, _ = run(capsys, "status", "--dir", str(example_dir))
    assert code == 0 and "the issue of 2026-11-27" in out and "finished" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:] if line.strip()}
    assert lines["all"][0] == str(EXAMPLE_RECIPIENTS)
    assert lines["qa-leads"][0] == "4" and lines["fostering"][0] == "2"


def test_a_test_send_goes_to_one_address_as_a_reader_of_every_network_outside_the_ledger(
    env, capsys, example_dir, smtp_server
):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    env.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key, 32 characters or more")
    import_members(capsys, example_dir)

    code, _out, err = run(
        capsys, "send", "--dir", str(example_dir), "--test", "editor@example.org", "--date", "2026-11-27"
    )

    assert code == 0, err
    assert [m.rcpt_tos for m in smtp_server.messages] == [["editor@example.org"]]
    message = email.message_from_bytes(smtp_server.messages[0].data, policy=policy.default)
    assert message["Subject"].startswith("[TEST]")
    assert QA_ONLY_ITEM in message.get_body(("plain",)).get_content()
    assert "SEND inspection outcomes to 31 October 2026" in message.get_body(("plain",)).get_content()
    code, _, err = run(capsys, "status", "--dir", str(example_dir))
    assert code == 1 and "no issue has been sent yet" in err


def test_dry_run_counts_per_network_and_records_nothing(env, capsys, example_dir):
    import_members(capsys, example_dir)

    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--dry-run")

    assert code == 0, err
    assert f"{EXAMPLE_RECIPIENTS} recipients" in out
    assert any(line.split()[:2] == ["qa-leads", "4"] for line in out.splitlines())
    assert "nothing was sent or recorded" in out
    assert not (example_dir / "outbox").exists() and not (example_dir / ".secret_key").exists()
    code, _, err = run(capsys, "status", "--dir", str(example_dir))
    assert code == 1 and "no issue has been sent yet" in err


def test_smtp_without_a_secret_key_is_refused_before_anything_is_sent(env, capsys, example_dir, smtp_server):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    import_members(capsys, example_dir)

    code, _out, err = run(capsys, "send", "--dir", str(example_dir))

    assert code == 1 and err.strip().count("\n") == 0 and "NEWSLETTER_SECRET_KEY" in err
    assert smtp_server.messages == [] and not (example_dir / ".secret_key").exists()


def test_status_lists_each_failure_with_its_smtp_reply(env, capsys, example_dir, smtp_server):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    env.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key, 32 characters or more")
    import_members(capsys, example_dir)
    smtp_server.handler.reply = lambda e: "550 5.1.1 no such mailbox" if e.rcpt_tos[0].startswith("sam.patel") else None

    code, out, err = run(capsys, "send", "--dir", str(example_dir))
    assert code == 0, err
    assert "11 sent, 1 failed" in out and "1 marked bounced" in out

    code, out, _ = run(capsys, "status", "--dir", str(example_dir), "--date", "2026-11-27")
    assert "failures (1):" in out
    assert "sam.patel@westshire.example.org  [qa-leads]  after 1 attempt(s): 550 5.1.1 no such mailbox" in out
    code, out, _ = run(
        capsys, "subscribers", "list", "--dir", str(example_dir), "--status", "bounced", "--format", "csv"
    )
    assert "sam.patel@westshire.example.org" in out


def test_a_paused_send_exits_2_and_says_why(env, capsys, example_dir, smtp_server):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    env.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key, 32 characters or more")
    env.setenv("NEWSLETTER_PAUSE_AFTER_ERRORS", "3")
    env.setenv("NEWSLETTER_SMTP_POOL", "1")
    import_members(capsys, example_dir)
    smtp_server.handler.reply = lambda e: "454 4.7.0 Throttling failure"

    code, out, err = run(capsys, "send", "--dir", str(example_dir))

    assert code == 2
    assert "paused: 3 delivery errors in a row" in err and "454 4.7.0 Throttling failure" in err
    code, out, _ = run(capsys, "status", "--dir", str(example_dir))
    assert "paused: 3 delivery errors in a row" in out


# keyboard mistakes: nobody to send to, an issue dated in the future, --network with --test --------------


def london_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/London")).date()  # examples/newsletter.yaml's schedule zone


def future_issue(root: Path, days: int = 3) -> dt.date:
    """A valid issue file dated `days` after today, as an editor drafts next week's."""
    date = london_today() + dt.timedelta(days=days)
    data = {
        "number": 200,
        "date": date.isoformat(),
        "items": [{"programme": "Next week's news", "update": "Drafted ahead."}],
    }
    (root / "content" / "issues" / f"{date}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return date


def sends(root: Path) -> list[dt.date]:
    engine = open_store(f"sqlite:///{root / 'newsletter.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(ledger.sends_table.c.issue_date)).scalars())
    finally:
        engine.dispose()


def outbox(root: Path) -> list[Path]:
    return sorted((root / "outbox").glob("*.eml"))


def test_a_send_in_a_fresh_folder_is_refused_records_nothing_and_after_an_import_reaches_everyone(
    env, capsys, example_dir
):
    code, out, err = run(capsys, "send", "--dir", str(example_dir))

    assert code == 1 and out == ""
    [line] = [x for x in err.splitlines() if not x.startswith("note:")]  # the note: the development key made
    assert line.startswith(
        "error: the issue of 2026-11-27 would reach nobody: no active subscriber is in its networks ("
    )
    assert "nothing was sent or recorded" in line and "`newsletter subscribers import FILE`" in line
    assert sends(example_dir) == [] and outbox(example_dir) == []

    import_members(capsys, example_dir)
    code, out, err = run(capsys, "send", "--dir", str(example_dir))
    assert code == 0, err
    assert f"{EXAMPLE_RECIPIENTS} sent, 0 failed" in out and len(outbox(example_dir)) == EXAMPLE_RECIPIENTS


def test_a_bare_send_takes_the_issue_due_never_a_future_one_and_says_which_is_next(env, capsys, example_dir):
    import_members(capsys, example_dir)
    future = future_issue(example_dir)

    code, out, err = run(capsys, "send", "--dir", str(example_dir))
    assert code == 0, err
    assert out.startswith("the issue of 2026-11-27 ") and sends(example_dir) == [dt.date(2026, 11, 27)]

    code, out, err = run(capsys, "send", "--dir", str(example_dir))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: no issue is due: the issue of 2026-11-27 was sent on ")
    assert err.endswith(
        f"; the next is the issue of {future}, due in 3 days (`newsletter send --date {future}` sends it now)\n"
    )
    assert sends(example_dir) == [dt.date(2026, 11, 27)] and len(outbox(example_dir)) == EXAMPLE_RECIPIENTS


def test_a_future_date_needs_yes_without_a_terminal_and_dry_run_and_test_do_not(env, capsys, example_dir):
    import_members(capsys, example_dir)
    future = future_issue(example_dir, days=1)

    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--date", str(future))
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1] == (
        f"error: the issue of {future} is dated in the future (in 1 day): add --yes to send it now"
    )
    assert sends(example_dir) == [] and outbox(example_dir) == []

    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--date", str(future), "--dry-run")
    assert code == 0 and f"{EXAMPLE_RECIPIENTS} recipients" in out, err
    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--date", str(future), "--test", "ed@example.org")
    assert code == 0 and f"sent a test copy of the issue of {future}" in out, err
    assert sends(example_dir) == []

    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--date", str(future), "--yes")
    assert code == 0, err
    assert f"{EXAMPLE_RECIPIENTS} sent" in out and sends(example_dir) == [future]


def cli_on_a_terminal(root: Path, *argv: str, answer: bytes) -> tuple[int, str]:
    """`newsletter *argv` with a pseudo-terminal as stdin, stdout and stderr, answering its question with `answer`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", *argv], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    said = b""
    try:
        deadline = time.monotonic() + 60
        while b"[y/N]" not in said:
            assert time.monotonic() < deadline and process.poll() is None, said.decode(errors="replace")
            if select.select([controller], [], [], 0.5)[0]:
                said += os.read(controller, 4096)
        os.write(controller, answer)
        while True:  # read to the end: the child may block writing to a full terminal otherwise
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            said += chunk
        return process.wait(timeout=60), said.decode(errors="replace")
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()


def test_on_a_terminal_a_future_date_asks_first_and_no_sends_nothing(env, capsys, example_dir):
    import_members(capsys, example_dir)
    future = future_issue(example_dir)
    argv = ("send", "--dir", str(example_dir), "--date", str(future))

    code, said = cli_on_a_terminal(example_dir, *argv, answer=b"n\n")
    question = f"The issue of {future} is dated in the future (in 3 days). Send it now to"
    assert f"{question} {EXAMPLE_RECIPIENTS} recipients? [y/N]" in said
    assert code == 1 and f"not sent: the issue of {future} waits for its date" in said
    assert sends(example_dir) == [] and outbox(example_dir) == []

    code, said = cli_on_a_terminal(example_dir, *argv, answer=b"y\n")
    assert code == 0, said
    assert f"{EXAMPLE_RECIPIENTS} sent, 0 failed" in said
    assert sends(example_dir) == [future] and len(outbox(example_dir)) == EXAMPLE_RECIPIENTS


def test_a_test_copy_with_network_is_the_copy_that_network_reads(env, capsys, example_dir):
    argv = ("send", "--dir", str(example_dir), "--test", "editor@example.org", "--date", "2026-11-27")

    code, out, err = run(capsys, *argv, "--network", "fostering")
    assert code == 0, err
    assert "as a reader of fostering to editor@example.org" in out
    [eml] = outbox(example_dir)
    text = email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    assert QA_ONLY_ITEM not in text
    eml.unlink()

    code, out, err = run(capsys, *argv, "--network", "qa-leads")
    assert code == 0, err
    [eml] = outbox(example_dir)
    assert (
        QA_ONLY_ITEM
        in email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    )
    assert sends(example_dir) == []


def test_a_relay_refusing_everyone_exits_2_in_one_line_and_fails_nobody(env, capsys, example_dir, smtp_server):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    env.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key-long-enough-for-real-mail")
    env.setenv("NEWSLETTER_SMTP_POOL", "1")
    import_members(capsys, example_dir)
    smtp_server.handler.reply = lambda e: "554 5.6.0 content rejected"

    code, _out, err = run(capsys, "send", "--dir", str(example_dir))

    err = "\n".join(line for line in err.splitlines() if not line.startswith("warning: sending over SMTP without DKIM"))
    assert code == 2 and err.strip().count("\n") == 0
    assert "refused 5 different recipients in a row with 554 5.6.0" in err and "not the readers" in err
    code, out, _ = run(capsys, "status", "--dir", str(example_dir))
    assert "failures" not in out and f"{EXAMPLE_RECIPIENTS:>11}" in out.splitlines()[-1]  # all still queued


def test_retry_failed_queues_the_failed_again_but_never_the_bounced(env, capsys, example_dir, smtp_server):
    env.setenv("NEWSLETTER_SMTP_URL", smtp_server.url)
    env.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key-long-enough-for-real-mail")
    import_members(capsys, example_dir)
    replies = {"sam.patel": "550 5.1.1 no such mailbox", "riley.owusu": "552 5.2.2 mailbox full"}
    smtp_server.handler.reply = lambda e: next((r for k, r in replies.items() if e.rcpt_tos[0].startswith(k)), None)
    code, out, err = run(capsys, "send", "--dir", str(example_dir))
    assert code == 0 and "10 sent, 2 failed" in out, err + out

    smtp_server.handler.reply = None  # the mailbox has room again
    code, out, err = run(capsys, "send", "--dir", str(example_dir), "--retry-failed")

    assert code == 0, err
    assert "requeued 1 failed recipient of the issue of 2026-11-27" in out and "11 sent, 1 failed" in out
    assert sum(1 for m in smtp_server.messages for to in m.rcpt_tos if to.startswith("riley.owusu")) == 1
    assert not any(to.startswith("sam.patel") for m in smtp_server.messages for to in m.rcpt_tos)
    code, out, _ = run(capsys, "status", "--dir", str(example_dir))
    assert "finished" in out.splitlines()[0]
    assert "requeued 1 failed recipients with --retry-failed" in out and "of them now: 1 sent" in out


@pytest.mark.parametrize("special", ["#", "/", "?"])
def test_a_password_with_a_special_character_is_not_printed(env, capsys, example_dir, special):
    env.setenv("NEWSLETTER_SMTP_URL", f"smtp://user:s3cr{special}etpw@relay.example.org:587")
    env.setenv("NEWSLETTER_SECRET_KEY", "cli-test-key-long-enough-for-real-mail")

    code, _out, err = run(capsys, "send", "--dir", str(example_dir))

    assert code == 1 and err.strip().count("\n") == 0 and "percent-encode" in err
    assert "s3cr" not in err and "etpw" not in err
