"""Who owns an order: the shop's customer id on orders and, once the host site has vouched for the visitor
(identity verification), on their conversation; failed attempts to prove ownership, for the lock-out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("customer_id", sa.String(128)))
        batch.create_index("ix_orders_customer_id", ["customer_id"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("customer_id", sa.String(128)))
        batch.add_column(sa.Column("customer_email", sa.String(256)))
    op.create_table(
        "ownership_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ownership_failures_conversation", "ownership_failures", ["conversation_id", "created_at"])
    op.create_index("ix_ownership_failures_order", "ownership_failures", ["order_id", "created_at"])


def downgrade() -> None:
    op.drop_table("ownership_failures")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("customer_email")
        batch.drop_column("customer_id")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_customer_id")
        batch.drop_column("customer_id")
