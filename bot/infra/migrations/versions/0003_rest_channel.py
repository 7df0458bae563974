"""Conversations reached through the Rasa REST channel are found by the client's sender id; one
correction per message (a later relabelling replaces the earlier).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("sender", sa.String(128)))
        batch.create_index("ix_conversations_sender", ["sender"], unique=True)
    with op.batch_alter_table("corrections") as batch:
        batch.drop_index("ix_corrections_message_id")
        batch.create_index("ix_corrections_message_id", ["message_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_index("ix_corrections_message_id")
        batch.create_index("ix_corrections_message_id", ["message_id"])
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_sender")
        batch.drop_column("sender")
