"""The delivery ledger: sends and one delivery row per recipient.

Revision ID: 0002_ledger
Revises: 0001_subscribers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ledger"
down_revision = "0001_subscribers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sends",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("networks", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sends")),
        sa.UniqueConstraint("issue_date", name=op.f("uq_sends_issue_date")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("send_id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("variant", sa.Text, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_reply", sa.Text, nullable=True),
        sa.Column("message_id", sa.String(400), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')",
            name=op.f("ck_deliveries_state"),
        ),
        sa.ForeignKeyConstraint(
            ["send_id"], ["sends.id"], ondelete="CASCADE", name=op.f("fk_deliveries_send_id_sends")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("send_id", "subscriber_id", name=op.f("uq_deliveries_send_id_subscriber_id")),
    )
    op.create_index(op.f("ix_deliveries_send_id_state_id"), "deliveries", ["send_id", "state", "id"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("sends")
