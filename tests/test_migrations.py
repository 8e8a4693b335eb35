"""Schema migrations: one line of revisions, and a database made by the first schema upgrades without losing a row."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from newsletter import subscribers
from newsletter.store import alembic_config, open_store, upgrade
from newsletter.subscribers import Status

FIRST = "0001_subscribers"


def test_revisions_form_one_line_starting_at_the_first():
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "two revisions share a parent: give one the other as down_revision"
    assert [r.revision for r in script.walk_revisions()][-1] == FIRST


def test_a_database_of_the_first_schema_upgrades_keeping_its_rows(database_url):
    engine = sa.create_engine(database_url)
    upgrade(engine, FIRST)
    when = dt.datetime(2026, 1, 5, 9, 30, tzinfo=dt.UTC)
    with engine.begin() as conn:
        # rows written with plain SQL, as the version that had only the first schema wrote them
        for sid, email, status in [
            (1, "Jo@example.org", "active"),
            (2, "sam@example.org", "unsubscribed"),
            (3, "ali@example.org", "active"),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO subscribers (id, email, email_key, name, organisation, status, status_changed_at, status_reason, created_at)"
                    " VALUES (:id, :email, :key, :name, 'Org', :status, :when, 'imported', :when)"
                ).bindparams(sa.bindparam("when", type_=sa.DateTime(timezone=True))),
                dict(id=sid, email=email, key=email.lower(), name=f"Person {sid}", status=status, when=when),
            )
        conn.execute(
            sa.text(
                "INSERT INTO subscriber_networks (subscriber_id, network) VALUES (1, 'qa-leads'), (1, 'send'), (2, 'qa-leads'), (3, 'send')"
            )
        )
        if conn.dialect.name == "postgresql":  # explicit ids leave the sequence behind; the old version used it
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), 3)"))
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (FIRST,)
    engine.dispose()

    engine = open_store(database_url)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert MigrationContext.configure(conn).get_current_heads() == (head,)
    jo = subscribers.find(engine, "jo@EXAMPLE.org")
    assert (jo.id, jo.email, jo.name, jo.organisation, jo.networks) == (
        1,
        "Jo@example.org",
        "Person 1",
        "Org",
        {"qa-leads", "send"},
    )
    assert jo.status_changed_at == when
    assert subscribers.find(engine, "sam@example.org").status is Status.UNSUBSCRIBED
    assert [s.id for s in subscribers.recipients(engine, ["qa-leads", "send"])] == [1, 3]
    added = subscribers.add(engine, "new@example.org", networks=["send"], known_networks=["send"])
    assert added.id == 4
    engine.dispose()
