"""amphora: one row per HAProxy instance of a load balancer (the amphora API)

Load balancers of the haproxy provider (and its alias amphora) that exist
when this runs get their STANDALONE amphora, ALLOCATED if the load balancer
is ACTIVE.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import socket
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    amphora = op.create_table(
        "amphora",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=36), nullable=False),
        sa.Column("compute_id", sa.String(length=255), nullable=True),
        sa.Column("lb_network_ip", sa.String(length=64), nullable=True),
        sa.Column("vrrp_ip", sa.String(length=64), nullable=True),
        sa.Column("ha_ip", sa.String(length=64), nullable=True),
        sa.Column("vrrp_port_id", sa.String(length=36), nullable=True),
        sa.Column("ha_port_id", sa.String(length=36), nullable=True),
        sa.Column("vrrp_interface", sa.String(length=16), nullable=True),
        sa.Column("vrrp_id", sa.Integer(), nullable=True),
        sa.Column("vrrp_priority", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["load_balancer_id"], ["load_balancer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_amphora_load_balancer_id", "amphora", ["load_balancer_id"])
    lbs = sa.table("load_balancer", sa.column("id"), sa.column("provider"),
                   sa.column("provisioning_status"), sa.column("vip_address"),
                   sa.column("vip_port_id"), sa.column("created_at", sa.DateTime()))
    rows = op.get_bind().execute(
        sa.select(lbs.c.id, lbs.c.provisioning_status, lbs.c.vip_address, lbs.c.vip_port_id,
                  lbs.c.created_at).where(lbs.c.provider.in_(("haproxy", "amphora")))).all()
    if rows:
        # The placement is not known here: the host alone names where each runs.
        host = socket.gethostname()
        op.bulk_insert(amphora, [
            {"id": str(uuid.uuid4()), "load_balancer_id": r.id, "role": "STANDALONE",
             "status": "ALLOCATED" if r.provisioning_status == "ACTIVE" else "PENDING_CREATE",
             "compute_id": host, "ha_ip": r.vip_address, "ha_port_id": r.vip_port_id,
             "created_at": r.created_at, "updated_at": r.created_at} for r in rows])


def downgrade() -> None:
    op.drop_index("ix_amphora_load_balancer_id", table_name="amphora")
    op.drop_table("amphora")
