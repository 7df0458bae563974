"""What keeps strangers from steering redistillation: the (hashed) client address that opened a conversation,
so the harvest can cap what one client contributes, and an admin's approval on corrections, without which an
agent's correction may not overturn a base training example.

Corrections made before this revision are not approved: an admin approves those that contradict the base data.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("client_hash", sa.String(32)))
        batch.create_index("ix_conversations_client_hash", ["client_hash"])
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("approved_by", sa.Integer()))
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True)))
        batch.create_foreign_key("fk_corrections_approved_by", "agents", ["approved_by"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_constraint("fk_corrections_approved_by", type_="foreignkey")
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_client_hash")
        batch.drop_column("client_hash")
