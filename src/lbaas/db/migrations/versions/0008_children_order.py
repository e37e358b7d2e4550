"""listener and pool: an index on (load_balancer_id, created_at, id), their order

A load balancer shows its listeners and pools in the order they were created
(``created_at, id``). The index on ``load_balancer_id`` alone becomes one on
``(load_balancer_id, created_at, id)``: the same lookups, and the children of a
list of load balancers are read in that order from the index instead of scanning
the table and sorting it (SQLite, 1,000 load balancers: 1.5 -> 0.9 ms per kind;
issue 12).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("listener", "pool"):
        op.create_index(f"ix_{table}_load_balancer_id_created_at_id", table,
                        ["load_balancer_id", "created_at", "id"])
        op.drop_index(f"ix_{table}_load_balancer_id", table_name=table)


def downgrade() -> None:
    for table in ("listener", "pool"):
        op.create_index(f"ix_{table}_load_balancer_id", table, ["load_balancer_id"])
        op.drop_index(f"ix_{table}_load_balancer_id_created_at_id", table_name=table)
