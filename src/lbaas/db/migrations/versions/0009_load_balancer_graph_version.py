"""load_balancer: graph_version, the number of changes begun on it

Every change of a load balancer's graph begins by moving the load balancer
to a PENDING_* status (:mod:`lbaas.worker.status`); that same ``UPDATE`` now
counts it in ``graph_version``. A worker that applied version n and is given
version n + 1 knows that only the objects now PENDING_* changed since, so a
member added to a pool of a thousand reads one member, not the thousand
(issue 12). Existing load balancers start at 0.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("load_balancer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("graph_version", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("load_balancer", schema=None) as batch_op:
        batch_op.drop_column("graph_version")
