"""Alembic environment: runs on the connection that newsletter.store.upgrade passes in."""

from __future__ import annotations

from alembic import context

from newsletter.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through newsletter.store.open_store(url), which passes a connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
