"""GET /metrics: operating statuses and traffic counters in Prometheus text format.

Read from the database at scrape time (what the health manager last wrote),
by a collector built for each request, so every lbaas API process serves the
same figures. Series, labelled by ids and ``project_id``:

- ``lbaas_<kind>_operating_status{..., operating_status="<STATUS>"}``: one
  series per possible operating status (ONLINE, OFFLINE, DEGRADED, ERROR,
  NO_MONITOR, DRAINING), 1 for the current one and 0 for the others, for
  kind ``loadbalancer``, ``listener``, ``pool``, ``member``;
- counters ``lbaas_<kind>_bytes_in_total``, ``_bytes_out_total`` (bytes),
  ``_connections_total`` and the gauge ``lbaas_<kind>_active_connections``
  for the same kinds, plus ``lbaas_<kind>_request_errors_total`` for load
  balancers and listeners. A load balancer's figures are its listeners'
  sums (as ``GET /loadbalancers/{id}/stats``), a pool's are its members'.

Labels: ``loadbalancer_id`` on everything, ``listener_id``, ``pool_id``,
``member_id`` on their objects (a member also has its ``pool_id``).
Callers that may read every project (the standalone default, admins) get
all objects; others only their project's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas.api.deps import Ctx, Db
from lbaas.common import constants as c
from lbaas.db import models as m

router = APIRouter(tags=["Metrics"])
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"  # what a plain scrape gets

_COUNTERS = (("bytes_in", "Bytes received from clients."),
             ("bytes_out", "Bytes sent to clients."),
             ("total_connections", "Connections handled."))
_ERRORS = ("request_errors", "Requests that failed before reaching a member (bad requests, "
                             "client aborts, denied).")


def _counter_name(column: str) -> str:
    return "connections" if column == "total_connections" else column


class DatabaseCollector(Collector):
    """Statuses and counters of every object visible to ``project_id`` (None: all)."""

    def __init__(self, session: Session, project_id: str | None) -> None:
        self.session = session
        self.project_id = project_id

    def _rows(self, stmt: Any, model: Any) -> Iterable[Any]:
        if self.project_id is not None:
            stmt = stmt.where(model.project_id == self.project_id)
        return self.session.execute(stmt).all()

    def collect(self) -> Iterator[Metric]:
        """Yield one metric family per figure and kind (a scrape)."""
        ls, ms = m.ListenerStatistics, m.MemberStatistics

        def sums(stats: Any, *cols: str) -> list[Any]:
            return [func.coalesce(func.sum(getattr(stats, col)), 0).label(col) for col in cols]

        lis_cols = ("active_connections", *(x for x, _ in _COUNTERS), _ERRORS[0])
        mem_cols = ("active_connections", *(x for x, _ in _COUNTERS))
        lbs = self._rows(
            select(m.LoadBalancer.id, m.LoadBalancer.project_id,
                   m.LoadBalancer.operating_status, *sums(ls, *lis_cols))
            .outerjoin(m.Listener, m.Listener.load_balancer_id == m.LoadBalancer.id)
            .outerjoin(ls, ls.listener_id == m.Listener.id)
            .group_by(m.LoadBalancer.id, m.LoadBalancer.project_id,
                      m.LoadBalancer.operating_status)
            .order_by(m.LoadBalancer.id), m.LoadBalancer)
        listeners = self._rows(
            select(m.Listener.id, m.Listener.project_id, m.Listener.load_balancer_id,
                   m.Listener.operating_status, *sums(ls, *lis_cols))
            .outerjoin(ls, ls.listener_id == m.Listener.id)
            .group_by(m.Listener.id, m.Listener.project_id, m.Listener.load_balancer_id,
                      m.Listener.operating_status)
            .order_by(m.Listener.id), m.Listener)
        pools = self._rows(
            select(m.Pool.id, m.Pool.project_id, m.Pool.load_balancer_id,
                   m.Pool.operating_status, *sums(ms, *mem_cols))
            .outerjoin(m.Member, m.Member.pool_id == m.Pool.id)
            .outerjoin(ms, ms.member_id == m.Member.id)
            .group_by(m.Pool.id, m.Pool.project_id, m.Pool.load_balancer_id,
                      m.Pool.operating_status)
            .order_by(m.Pool.id), m.Pool)
        members = self._rows(
            select(m.Member.id, m.Member.project_id, m.Member.pool_id, m.Pool.load_balancer_id,
                   m.Member.operating_status, *sums(ms, *mem_cols))
            .join(m.Pool, m.Pool.id == m.Member.pool_id)
            .outerjoin(ms, ms.member_id == m.Member.id)
            .group_by(m.Member.id, m.Member.project_id, m.Member.pool_id,
                      m.Pool.load_balancer_id, m.Member.operating_status)
            .order_by(m.Member.id), m.Member)

        kinds: list[tuple[str, list[str], Iterable[Any], bool]] = [
            ("loadbalancer", ["loadbalancer_id", "project_id"], lbs, True),
            ("listener", ["loadbalancer_id", "listener_id", "project_id"], listeners, True),
            ("pool", ["loadbalancer_id", "pool_id", "project_id"], pools, False),
            ("member", ["loadbalancer_id", "pool_id", "member_id", "project_id"], members,
             False),
        ]
        for kind, labels, rows, has_errors in kinds:
            yield from self._family(kind, labels, list(rows), has_errors)

    @staticmethod
    def _family(kind: str, labels: list[str], rows: list[Any],
                has_errors: bool) -> Iterator[Metric]:
        def values(row: Any) -> list[str]:
            ids = {"loadbalancer_id": row.load_balancer_id if kind != "loadbalancer"
                   else row.id, "project_id": row.project_id or ""}
            if kind != "loadbalancer":
                ids[f"{kind}_id"] = row.id
            if kind == "member":
                ids["pool_id"] = row.pool_id
            return [ids[name] for name in labels]

        status = GaugeMetricFamily(f"lbaas_{kind}_operating_status",
                                   f"Operating status of the {kind} (1: the current one), "
                                   "as the health manager last observed it.",
                                   labels=[*labels, "operating_status"])
        active = GaugeMetricFamily(f"lbaas_{kind}_active_connections",
                                   "Connections open now.", labels=labels)
        columns = [*_COUNTERS, *([_ERRORS] if has_errors else [])]
        totals = {col: CounterMetricFamily(f"lbaas_{kind}_{_counter_name(col)}", text,
                                           labels=labels) for col, text in columns}
        for row in rows:
            ids = values(row)
            for value in c.OPERATING_STATUSES:
                status.add_metric([*ids, value], 1.0 if row.operating_status == value else 0.0)
            active.add_metric(ids, float(row.active_connections))
            for col, family in totals.items():
                family.add_metric(ids, float(getattr(row, col)))
        yield status
        yield active
        yield from totals.values()


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {TEXT_FORMAT: {}},
                             "description": "Prometheus text format (OpenMetrics if the "
                                            "Accept header asks for it)"}})
def metrics(request: Request, ctx: Ctx, db: Db) -> Response:
    """Operating statuses and traffic counters of load balancers, listeners, pools and
    members (Prometheus text format)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db, None if ctx.sees_all_projects else ctx.project_id))
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry), headers={"Content-Type": content_type})
