"""GET /metrics: statuses and counters in Prometheus text format, per caller's projects."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from lbaas.common import constants as c
from lbaas.db import models as m
from tests.api.base import Api


def scrape(api: Api, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = api.client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    found = [v for (n, ls), v in samples.items()
             if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def _graph(api: Api, project: str) -> dict[str, Any]:
    lb = api.create_lb(_project=project)
    l1 = api.create_listener(lb["id"], protocol_port=80, _project=project)
    l2 = api.create_listener(lb["id"], protocol_port=81, _project=project)
    pool = api.create_pool(listener_id=l1["id"], _project=project)
    m1 = api.create_member(pool["id"], protocol_port=1, _project=project)
    m2 = api.create_member(pool["id"], protocol_port=2, _project=project)
    return {"lb": lb["id"], "l1": l1["id"], "l2": l2["id"], "pool": pool["id"],
            "m1": m1["id"], "m2": m2["id"]}


def _observe(api: Api, g: dict[str, Any]) -> None:
    """What a health manager would have written."""
    with api.service.sessions() as session, session.begin():
        session.add_all([
            m.ListenerStatistics(listener_id=g["l1"], bytes_in=100, bytes_out=1000,
                                 active_connections=2, total_connections=7, request_errors=1),
            m.ListenerStatistics(listener_id=g["l2"], bytes_in=5, bytes_out=6,
                                 active_connections=0, total_connections=1, request_errors=0),
            m.MemberStatistics(member_id=g["m1"], bytes_in=60, bytes_out=600,
                               active_connections=1, total_connections=4),
            m.MemberStatistics(member_id=g["m2"], bytes_in=40, bytes_out=400,
                               active_connections=1, total_connections=3)])
        session.execute(update(m.Member).where(m.Member.id == g["m2"])
                        .values(operating_status=c.ERROR))
        session.execute(update(m.LoadBalancer).where(m.LoadBalancer.id == g["lb"])
                        .values(operating_status=c.DEGRADED))


def test_counters_and_statuses(api: Api) -> None:
    g = _graph(api, "p1")
    _observe(api, g)
    got = scrape(api)
    assert value(got, "lbaas_listener_bytes_in_total", listener_id=g["l1"],
                 loadbalancer_id=g["lb"], project_id="p1") == 100
    assert value(got, "lbaas_listener_request_errors_total", listener_id=g["l1"]) == 1
    assert value(got, "lbaas_listener_active_connections", listener_id=g["l2"]) == 0
    assert value(got, "lbaas_loadbalancer_bytes_out_total", loadbalancer_id=g["lb"]) == 1006
    assert value(got, "lbaas_loadbalancer_connections_total", loadbalancer_id=g["lb"]) == 8
    assert value(got, "lbaas_loadbalancer_active_connections", loadbalancer_id=g["lb"]) == 2
    assert value(got, "lbaas_pool_bytes_in_total", pool_id=g["pool"]) == 100
    assert value(got, "lbaas_pool_active_connections", pool_id=g["pool"]) == 2
    assert value(got, "lbaas_member_bytes_out_total", member_id=g["m1"], pool_id=g["pool"],
                 loadbalancer_id=g["lb"]) == 600
    assert value(got, "lbaas_member_connections_total", member_id=g["m2"]) == 3
    for status in c.OPERATING_STATUSES:
        assert value(got, "lbaas_member_operating_status", member_id=g["m2"],
                     operating_status=status) == (1 if status == c.ERROR else 0)
        assert value(got, "lbaas_loadbalancer_operating_status", loadbalancer_id=g["lb"],
                     operating_status=status) == (1 if status == c.DEGRADED else 0)
    assert value(got, "lbaas_listener_operating_status", listener_id=g["l1"],
                 operating_status=c.OFFLINE) == 1  # as created (the noop provider)


def test_objects_without_traffic_are_zero(api: Api) -> None:
    g = _graph(api, "p1")
    got = scrape(api)
    assert value(got, "lbaas_loadbalancer_bytes_in_total", loadbalancer_id=g["lb"]) == 0
    assert value(got, "lbaas_member_active_connections", member_id=g["m1"]) == 0


def test_a_project_sees_only_its_own_objects(api: Api) -> None:
    mine, theirs = _graph(api, "p1"), _graph(api, "p2")
    got = scrape(api, **{"X-Project-Id": "p1", "X-Roles": "member"})
    ids = {v for (_, labels), _ in got.items() for k, v in labels if k.endswith("_id")}
    assert mine["m1"] in ids and mine["lb"] in ids
    assert not ids & set(theirs.values())
    assert {v for (_, labels), _ in got.items() for k, v in labels if k == "project_id"} == \
        {"p1"}
    everything = scrape(api)  # the standalone admin
    assert theirs["m2"] in {v for (_, labels), _ in everything.items() for _, v in labels}


def test_empty(api: Api) -> None:
    text = api.client.get("/metrics").text
    assert "# TYPE lbaas_loadbalancer_operating_status gauge" in text
    assert "# TYPE lbaas_member_bytes_in_total counter" in text
    assert not re.search(r"^lbaas_\w+\{", text, re.M)
