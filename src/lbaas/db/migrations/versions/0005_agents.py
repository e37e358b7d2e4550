"""agents: the data-plane hosts, and the agent each amphora runs on

Agents are Neutron-shaped agent records (host, binary, availability zone,
admin_state_up, alive, heartbeat time, endpoint, configurations). An
amphora's ``agent_id`` names its agent; existing amphorae have none yet:
the standalone ``lbaas serve`` places them on its own agent when it starts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("agent_type", sa.String(length=255), nullable=False),
        sa.Column("binary", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("alive", sa.Boolean(), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("configurations", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_timestamp", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host"),
    )
    with op.batch_alter_table("amphora", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("cached_zone", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_amphora_agent_id", ["agent_id"], unique=False)
        batch_op.create_foreign_key("fk_amphora_agent_id_agent", "agent", ["agent_id"], ["id"],
                                    ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("amphora", schema=None) as batch_op:
        batch_op.drop_constraint("fk_amphora_agent_id_agent", type_="foreignkey")
        batch_op.drop_index("ix_amphora_agent_id")
        batch_op.drop_column("cached_zone")
        batch_op.drop_column("agent_id")
    op.drop_table("agent")
