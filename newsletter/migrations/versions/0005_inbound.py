"""Inbound mail: bounces and complaints kept, and the inbound messages already handled.

Revision ID: 0005_inbound
Revises: 0004_sent_at_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_inbound"
down_revision = "0004_sent_at_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, nullable=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("diagnostic", sa.Text, nullable=True),
        sa.Column("issue_date", sa.Date, nullable=True),
        sa.Column("message_key", sa.String(400), nullable=False),
        sa.CheckConstraint("kind IN ('hard', 'soft', 'complaint')", name=op.f("ck_bounces_kind")),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            ondelete="SET NULL",
            name=op.f("fk_bounces_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
    )
    op.create_index(op.f("ix_bounces_issue_date_kind"), "bounces", ["issue_date", "kind"])
    op.create_index(op.f("ix_bounces_subscriber_id_received_at"), "bounces", ["subscriber_id", "received_at"])
    op.create_index(op.f("ix_bounces_received_at"), "bounces", ["received_at"])
    op.create_table(
        "inbound_messages",
        sa.Column("message_key", sa.String(400), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("message_key", name=op.f("pk_inbound_messages")),
    )


def downgrade() -> None:
    op.drop_table("inbound_messages")
    op.drop_table("bounces")
