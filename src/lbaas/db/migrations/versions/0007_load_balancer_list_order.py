"""load_balancer list order: an index on (created_at, id), the default sort of lists

``GET /v2/lbaas/loadbalancers`` orders by ``created_at, id`` unless told
otherwise (Octavia's default). With this index the database reads the rows
in that order instead of sorting them: a page of 10 of 1,000 load balancers
0.31 -> 0.06 ms, all 1,000 4.9 -> 4.4 ms in SQLite (issue 12).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_load_balancer_created_at_id", "load_balancer", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_load_balancer_created_at_id", table_name="load_balancer")
