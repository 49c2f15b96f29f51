"""the review queue: plays the fraud gate held

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("review", sa.String(length=16), nullable=True))
        batch.create_index("ix_claims_review", ["review", "campaign_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.drop_index("ix_claims_review")
        batch.drop_column("review")
