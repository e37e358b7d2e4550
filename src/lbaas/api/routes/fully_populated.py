"""The fully-populated load balancer create (to be written)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from lbaas.api.deps import ApiState
from lbaas.api.policy import RequestContext
from lbaas.common import exceptions as exc
from lbaas.db import models as m


def build_graph(db: Session, ctx: RequestContext, state: ApiState, lb: m.LoadBalancer,
                listeners: list[dict[str, Any]], pools: list[dict[str, Any]]) -> None:
    raise exc.ProviderNotImplemented(prov=lb.provider, user_msg="fully populated create")


def dump_full(lb: m.LoadBalancer) -> dict[str, Any]:
    raise NotImplementedError
