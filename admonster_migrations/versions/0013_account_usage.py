"""Shared pacing: each ad account's worst Graph API usage and throttle, so replicas on one database pace together.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Types as the store's records derive them (admonster_store.record_table): float -> REAL on SQLite, double
    # precision on PostgreSQL; times are ISO-8601 UTC text.
    op.create_table(
        "account_usage",
        sa.Column("ad_account_id", sa.Text(), nullable=False),
        sa.Column("usage_pct", sa.Float().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("measure", sa.Text(), nullable=False),
        sa.Column("window_seconds", sa.Float().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("seen_at", sa.Text(), nullable=False),
        sa.Column("block_until", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("ad_account_id"),
    )


def downgrade() -> None:
    op.drop_table("account_usage")
