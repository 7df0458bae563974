"""Agents and admins: a role on agent accounts and a way to disable one; new intents become proposals that
an admin approves (or rejects) before redistillation learns them.

Existing accounts become agents (make an admin with `bot agent role USER admin`), and intents added before
this revision become proposals: an admin approves them before the next redistillation learns them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _string_enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("role", _string_enum("agent_role", "agent", "admin"), nullable=False,
                                   server_default="agent"))
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("new_intents") as batch:
        batch.add_column(sa.Column("status", _string_enum("proposal_status", "proposed", "approved", "rejected"),
                                   nullable=False, server_default="proposed"))
        batch.add_column(sa.Column("decided_by", sa.Integer()))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True)))
        batch.create_foreign_key("fk_new_intents_decided_by", "agents", ["decided_by"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("new_intents") as batch:
        batch.drop_constraint("fk_new_intents_decided_by", type_="foreignkey")
        batch.drop_constraint("proposal_status", type_="check")
        batch.drop_column("decided_at")
        batch.drop_column("decided_by")
        batch.drop_column("status")
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("agent_role", type_="check")
        batch.drop_column("disabled_at")
        batch.drop_column("role")
