"""Notices to the editor, one per firing and outcome, so two schedulers tell the editor once.

Revision ID: 0003_notices
Revises: 0002_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_notices"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("firing_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("told_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("firing_at", "kind", name=op.f("uq_notices_firing_at_kind")),
    )


def downgrade() -> None:
    op.drop_table("notices")
