"""open_store: creates and migrates the database, on SQLite and PostgreSQL, once and concurrently."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from newsletter import subscribers
from newsletter.store import alembic_config, metadata, open_store


def test_open_store_creates_the_schema_at_head(database_url):
    engine = open_store(database_url)
    with engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == set(
            ScriptDirectory.from_config(alembic_config()).get_heads()
        )
        assert {"subscribers", "subscriber_networks", "alembic_version"} <= set(sa.inspect(conn).get_table_names())
    engine.dispose()


def test_migrations_match_the_table_definitions(database_url):
    """The tables the code declares are the tables the migrations build (no drift between the two)."""
    engine = open_store(database_url)
    mine = {subscribers.subscribers_table.name, subscribers.subscriber_networks_table.name}
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()

    def table_of(change) -> str:
        change = change[0] if isinstance(change, list) else change  # modify_* changes come grouped
        target = change[1]
        if isinstance(target, sa.Table):
            return target.name
        return target.table.name if hasattr(target, "table") else change[2]

    assert [c for c in diff if table_of(c) in mine] == []


def test_opening_again_keeps_rows(database_url):
    engine = open_store(database_url)
    subscribers.add(engine, "jo@example.org", networks=["a"], known_networks=["a"])
    engine.dispose()
    again = open_store(database_url)
    assert subscribers.find(again, "JO@example.org") is not None
    again.dispose()


def test_sqlite_pragmas(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'sub' / 'news.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()
    assert (tmp_path / "sub" / "news.db").is_file()


def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path):
    """The store holds every subscriber's address: not for other users of the machine, whatever the umask."""
    previous = os.umask(0o022)
    try:
        engine = open_store(f"sqlite:///{tmp_path / 'news.db'}")
        subscribers.add(engine, "jo@example.org", networks=["send"], known_networks=["send"])
        with engine.connect():  # while a connection is open, the -wal and -shm files exist
            files = sorted(tmp_path.glob("news.db*"))
            assert [f.name for f in files] == ["news.db", "news.db-shm", "news.db-wal"]
            assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == dict.fromkeys(
                ["news.db", "news.db-shm", "news.db-wal"], "0o600"
            )
        engine.dispose()
    finally:
        os.umask(previous)


def test_concurrent_first_opens_migrate_once(database_url):
    """Several processes starting together on an empty database all get a working store.

    They wait for one moment after their imports, so their first connections really do race
    (on SQLite, two switching a new file to WAL at once used to fail with "database is locked").
    """
    code = (
        "import sys, time; from newsletter.store import open_store\n"
        "while time.time() < float(sys.argv[2]): pass\n"
        "open_store(sys.argv[1]).dispose()"
    )
    start = str(time.time() + 3)
    workers = [
        subprocess.Popen([sys.executable, "-c", code, database_url, start], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    failures = [w.stderr.read() for w in workers if w.wait(timeout=60) != 0]
    for w in workers:
        w.stderr.close()
    assert failures == []
    engine = open_store(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_bad_url_is_a_config_error():
    import pytest

    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError):
        open_store("not a url")
