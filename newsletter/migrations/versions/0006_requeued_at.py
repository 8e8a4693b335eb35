"""When `newsletter send --retry-failed` last queued a failed delivery again, for `newsletter status`.

Revision ID: 0006_requeued_at
Revises: 0005_inbound
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_requeued_at"
down_revision = "0005_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("requeued_at")
