"""Shared fixtures: a copy of the example folder, real databases, a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
POSTGRES_SERVER = os.environ.get("NEWSLETTER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """A private copy of examples/ that a test may change."""
    target = tmp_path / "news"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("outbox", "*.db"))
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_database():
    """A database of this test run's own on the local PostgreSQL, dropped at the end."""
    import sqlalchemy as sa

    name = f"newsletter_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{POSTGRES_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - CI always has PostgreSQL
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_SERVER}: {exc}")
    yield f"{POSTGRES_SERVER}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a schema of its own in this run's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    import sqlalchemy as sa

    base = request.getfixturevalue("postgres_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{schema}"


@pytest.fixture
def engine(database_url):
    """The store on `database_url`, migrated."""
    from newsletter.store import open_store

    engine = open_store(database_url)
    yield engine
    engine.dispose()


# HTTP ----------------------------------------------------------------------------------------


@contextmanager
def served(app, **options):
    """`app` on a real uvicorn server on 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", timeout_graceful_shutdown=1, **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def command_process(*argv: str, ready: str, env: dict[str, str] | None = None, stderr: int = subprocess.STDOUT):
    """`python -m newsletter ARGV` in a process of its own, with no NEWSLETTER_* but `env`, once `ready` answers 200."""
    import httpx

    settings = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", *argv],
        cwd=ROOT,
        env={**settings, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(ready, timeout=20).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"{argv[0]} did not answer {ready} within 30 s: {process.communicate()}")


# SMTP ----------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps every message; `reply` may answer DATA with an SMTP error."""

    messages: list[Received] = field(default_factory=list)
    reply: object = None  # callable(envelope) -> str | None: a reply such as "451 4.3.0 try later"

    async def handle_DATA(self, server, session, envelope):
        if self.reply is not None:
            answer = self.reply(envelope)
            if answer:
                return answer
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
        )
        return "250 2.0.0 OK"


@dataclass
class SMTPServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


@pytest.fixture
def smtp_server():
    """A real aiosmtpd server on 127.0.0.1 and a free port, recording what it receives."""
    from aiosmtpd.controller import Controller

    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield SMTPServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


def import_members(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    """The folder's subscribers/network-members.csv imported as an editor does, its output read and dropped."""
    from newsletter.cli import main

    code = main(["subscribers", "import", "--dir", str(root), str(Path(root) / "subscribers" / "network-members.csv")])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
