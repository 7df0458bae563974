"""Who is online and who had the last waiting conversation: for offering waiting conversations to online agents
in turn (round-robin assignment).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("last_offered_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("last_offered_at")
        batch.drop_column("last_seen_at")
