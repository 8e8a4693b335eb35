"""The database: one MetaData for every table, and an engine whose schema is migrated on open.

SQLite (a file beside newsletter.yaml) is the embedded default; PostgreSQL is reached through
NEWSLETTER_DATABASE_URL. The schema is owned by the Alembic revisions in newsletter/migrations.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .errors import ConfigError

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant works: it only has to be the same in every process that migrates this database.
ADVISORY_LOCK_KEY = 0x6E65_7773  # "news"
WAL_SWITCH_TIMEOUT = 10.0  # seconds


def alembic_config() -> Config:
    """The Alembic configuration, built in code: the revisions ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def open_store(url: str) -> sa.Engine:
    """An engine for `url` with the schema migrated to the newest revision (the SQLite file is created if missing)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    try:
        upgrade(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise ConfigError(
            f"cannot open the database {parsed.render_as_string(hide_password=True)}: {exc.orig}"
        ) from None
    return engine


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        _create_private(Path(url.database))
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10000")  # a second writer waits instead of failing at once
        _enable_wal(cursor)
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses nothing it
        # committed (the WAL is in the OS's page cache), only an OS crash or power cut can lose the last
        # commits (a resumed send then sends those messages again). It saves an fsync per commit, which
        # the ledger thread waited out while the senders waited for their outcomes to be recorded.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (readers then never block the writer), retrying a race with another opener.

    Two processes switching a new file at the same moment can deadlock on its locks; SQLite then
    answers "database is locked" at once, without waiting out the busy timeout, so we wait here.
    """
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.01, 0.05))


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision`; concurrent callers queue on a lock so only one migrates."""
    config = alembic_config()
    if revision == "head":
        heads = set(ScriptDirectory.from_config(config).get_heads())
        with engine.connect() as conn:
            if set(MigrationContext.configure(conn).get_current_heads()) == heads:
                return
    with engine.begin() as conn:
        # Take the database's write lock first: a second process then finds the work done.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
