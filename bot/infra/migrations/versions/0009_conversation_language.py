"""The language a visitor wrote in, when the model was not trained on it (the bot handed the conversation to a
person at once; the inbox shows the language).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("language", sa.String(8)))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("language")
