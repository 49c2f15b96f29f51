"""fair draws, variants, player attributes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaign_versions") as batch:
        batch.add_column(sa.Column("secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("commitment", sa.String(length=64), nullable=True))
    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("variant", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("draw", JSON, nullable=True))
    with op.batch_alter_table("players") as batch:
        batch.add_column(sa.Column("attributes", JSON, nullable=True))
    op.create_table(
        "attribute_definitions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("attribute_definitions")
    with op.batch_alter_table("players") as batch:
        batch.drop_column("attributes")
    with op.batch_alter_table("claims") as batch:
        batch.drop_column("draw")
        batch.drop_column("variant")
    with op.batch_alter_table("campaign_versions") as batch:
        batch.drop_column("commitment")
        batch.drop_column("secret")
