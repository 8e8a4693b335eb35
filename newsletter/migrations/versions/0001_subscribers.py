"""Subscribers and their networks.

Revision ID: 0001_subscribers
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_subscribers"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("organisation", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'unsubscribed', 'bounced', 'complained')", name=op.f("ck_subscribers_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("email_key", name=op.f("uq_subscribers_email_key")),
    )
    op.create_table(
        "subscriber_networks",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            ondelete="CASCADE",
            name=op.f("fk_subscriber_networks_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "network", name=op.f("pk_subscriber_networks")),
    )
    op.create_index(
        op.f("ix_subscriber_networks_network_subscriber_id"), "subscriber_networks", ["network", "subscriber_id"]
    )
    op.create_index(op.f("ix_subscribers_status_id"), "subscribers", ["status", "id"])


def downgrade() -> None:
    op.drop_table("subscriber_networks")
    op.drop_table("subscribers")
