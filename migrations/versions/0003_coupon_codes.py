"""coupon code pools

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupon_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pool", "code"),
        sa.UniqueConstraint("grant_id"),
    )
    op.create_index("ix_coupon_codes_free", "coupon_codes", ["pool", "grant_id"])


def downgrade() -> None:
    op.drop_index("ix_coupon_codes_free", table_name="coupon_codes")
    op.drop_table("coupon_codes")
