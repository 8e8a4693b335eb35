"""An index for the hourly rate limit, which counts the messages sent in the last hour across sends.

Revision ID: 0004_sent_at_index
Revises: 0003_notices
"""

from __future__ import annotations

from alembic import op

revision = "0004_sent_at_index"
down_revision = "0003_notices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_deliveries_state_sent_at"), "deliveries", ["state", "sent_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_state_sent_at"), table_name="deliveries")
