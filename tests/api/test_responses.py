"""Response bodies are written from the models' annotations, without validating each object.

Issue 12: a list of a thousand load balancers may cost about three shows, so
:meth:`~lbaas.api.schemas.common.ResponseModel.dump` writes the fields the way
the annotations say instead of running pydantic's validation and dump per
object. Here every body of a rich graph is compared with what validation and
dump make of the same values: they must be the same, byte for byte.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from lbaas.api.deps import JSONBody
from lbaas.api.schemas import common
from lbaas.api.schemas.loadbalancer import LoadBalancerFullResponse
from lbaas.worker import graph
from tests.api.base import Api, create_network, create_subnet


def _validated(cls: type[common.ResponseModel], obj: Any, **given: Any) -> dict[str, Any]:
    """The body as pydantic's validation and dump make it (the reference)."""
    body = {name: given[name] if name in given else
            (obj.get(name, info.get_default()) if isinstance(obj, dict) else getattr(obj, name))
            for name, info in cls.model_fields.items()}
    return cls.model_validate(body).model_dump(mode="json")


def _bodies(api: Api, paths: list[str]) -> dict[str, Any]:
    return {path: api.get(path).json() for path in paths}


def test_every_body_is_what_validation_would_make(api: Api,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    net = create_network(api, name="net")
    subnet = create_subnet(api, net["id"], "10.9.0.0/24", name="sub")
    extra = create_subnet(api, net["id"], "10.9.1.0/24")
    lb = api.create_lb(name="rich", description=None, tags=["b", "a"], vip_subnet_id=subnet["id"],
                       additional_vips=[{"subnet_id": extra["id"]}])
    listener = api.create_listener(lb["id"], name="http", tags=["t"],
                                   insert_headers={"X-Forwarded-For": "true"},
                                   allowed_cidrs=["10.0.0.0/8"])
    pool = api.create_pool(listener_id=listener["id"],
                           session_persistence={"type": "APP_COOKIE", "cookie_name": "c"})
    api.create_member(pool["id"], address="10.9.0.5", protocol_port=80, tags=["m"])
    api.create_member(pool["id"], address="10.9.0.6", protocol_port=80, weight=0,
                      admin_state_up=False)
    api.create_health_monitor(pool["id"])
    policy = api.create_l7policy(listener["id"], action="REDIRECT_TO_POOL",
                                 redirect_pool_id=pool["id"])
    api.create_l7rule(policy["id"], type="PATH", compare_type="STARTS_WITH", value="/x")
    api.create_lb()  # a plain one too: no children, no tags
    paths = ["/v2/lbaas/loadbalancers", f"/v2/lbaas/loadbalancers/{lb['id']}",
             f"/v2/lbaas/loadbalancers/{lb['id']}/status",
             f"/v2/lbaas/loadbalancers/{lb['id']}/stats",
             "/v2/lbaas/listeners", f"/v2/lbaas/listeners/{listener['id']}",
             "/v2/lbaas/pools", f"/v2/lbaas/pools/{pool['id']}",
             f"/v2/lbaas/pools/{pool['id']}/members", "/v2/lbaas/healthmonitors",
             "/v2/lbaas/l7policies", f"/v2/lbaas/l7policies/{policy['id']}/rules",
             "/v2.0/networks", "/v2.0/subnets", "/v2/lbaas/quotas/defaults"]
    written = _bodies(api, paths)
    with api.service.sessions() as session:  # the fully-populated create's answer
        full = LoadBalancerFullResponse.dump(graph.load_graph(session, lb["id"]))
    monkeypatch.setattr(common.ResponseModel, "dump", classmethod(_validated))
    assert _bodies(api, paths) == written
    with api.service.sessions() as session:
        assert LoadBalancerFullResponse.dump(graph.load_graph(session, lb["id"])) == full
    assert written["/v2/lbaas/loadbalancers"]["loadbalancers"][0]["tags"] == ["a", "b"]


def test_json_bodies_are_starlettes_bytes() -> None:
    # JSONBody writes keys that are all strings without orjson's non-string-key option
    # (half the cost of a list of a thousand); other keys are made strings, as json does.
    for content in ({"a": [1, None, True], "é": "ü"}, {1: "one", "b": {2.5: "x"}}, [], {}):
        assert JSONBody(content).body == JSONResponse(content).body
