"""vrrp_group: the VRRP group of an ACTIVE_STANDBY load balancer (Octavia's vrrp_group)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vrrp_group",
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("vrrp_group_name", sa.String(length=36), nullable=False),
        sa.Column("vrrp_auth_type", sa.String(length=16), nullable=False),
        sa.Column("vrrp_auth_pass", sa.String(length=36), nullable=False),
        sa.Column("advert_int", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["load_balancer_id"], ["load_balancer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("load_balancer_id"),
    )


def downgrade() -> None:
    op.drop_table("vrrp_group")
