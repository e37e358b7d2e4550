"""Members may not reach lbaas's own endpoints (issue 9, item 1).

A member makes HAProxy connect from this host: with ``127.0.0.1:9876`` (the
API) as a member, any tenant could call the API through its VIP as a local
client. Members and their health checks are refused (400, naming the
fields) when they would reach the API, the PostgreSQL database or a
``[networking] reserved_ips`` address: on create, update, batch update and
in a fully-populated load balancer. The API suite's service has the default
``bind_host`` 127.0.0.1 and ``bind_port`` 9876.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from lbaas.common import constants as c
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.api.base import Api
from tests.conftest import make_settings

API_REFUSED = ("{target} is not a valid option for member {fields}: it reaches the lbaas API "
               "({api})")


def _path(pool: dict[str, Any]) -> str:
    return f"/pools/{pool['id']}/members"


@pytest.mark.parametrize(("address", "shown"), [
    ("127.0.0.1", "127.0.0.1:9876"),
    ("0.0.0.0", "0.0.0.0:9876"),
    ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:9876"),
])
def test_a_member_on_the_api_is_refused(api: Api, lb: dict[str, Any], pool: dict[str, Any],
                                        address: str, shown: str) -> None:
    r = api.post(_path(pool), {"member": {"address": address, "protocol_port": 9876}},
                 status=400, project=lb["project_id"])
    assert api.fault(r) == API_REFUSED.format(target=shown, fields="address and protocol_port",
                                              api="127.0.0.1:9876")
    assert api.get(_path(pool)).json()["members"] == []
    assert api.lb_status(lb["id"]) == c.ACTIVE
    api.create_member(pool["id"], address=address, protocol_port=9877)


@pytest.mark.parametrize(("member", "fields", "target"), [
    ({"address": "127.0.0.20", "protocol_port": 80, "monitor_address": "127.0.0.1",
      "monitor_port": 9876}, "monitor_address and monitor_port", "127.0.0.1:9876"),
    ({"address": "127.0.0.1", "protocol_port": 80, "monitor_port": 9876},
     "address and monitor_port", "127.0.0.1:9876"),
    ({"address": "127.0.0.20", "protocol_port": 9876, "monitor_address": "127.0.0.1"},
     "monitor_address and protocol_port", "127.0.0.1:9876"),
])
def test_health_checks_on_the_api_are_refused(api: Api, pool: dict[str, Any],
                                              member: dict[str, Any], fields: str,
                                              target: str) -> None:
    r = api.post(_path(pool), {"member": member}, status=400)
    assert api.fault(r) == API_REFUSED.format(target=target, fields=fields,
                                              api="127.0.0.1:9876")


def test_reserved_ips_are_refused_for_health_checks_too(api: Api, pool: dict[str, Any]) -> None:
    r = api.post(_path(pool), {"member": {"address": "127.0.0.20", "protocol_port": 80,
                                          "monitor_address": "169.254.169.254"}}, status=400)
    assert api.fault(r) == "169.254.169.254 is not a valid option for member monitor_address"


def test_update_cannot_point_health_checks_at_the_api(api: Api, lb: dict[str, Any],
                                                      pool: dict[str, Any]) -> None:
    member = api.create_member(pool["id"], address="127.0.0.1", protocol_port=8080)
    one = f"{_path(pool)}/{member['id']}"
    r = api.put(one, {"member": {"monitor_port": 9876}}, status=400)
    assert api.fault(r) == API_REFUSED.format(target="127.0.0.1:9876",
                                              fields="address and monitor_port",
                                              api="127.0.0.1:9876")
    r = api.put(one, {"member": {"monitor_address": "169.254.169.254"}}, status=400)
    assert api.fault(r) == "169.254.169.254 is not a valid option for member monitor_address"
    assert api.lb_status(lb["id"]) == c.ACTIVE
    assert api.get(one).json()["member"]["monitor_port"] is None
    api.put(one, {"member": {"monitor_port": 9877}}, status=200)


def test_batch_update_checks_new_and_updated_members(api: Api, lb: dict[str, Any],
                                                     pool: dict[str, Any]) -> None:
    api.create_member(pool["id"], address="127.0.0.1", protocol_port=8080)
    r = api.put(_path(pool), {"members": [{"address": "127.0.0.1", "protocol_port": 9876}]},
                status=400)
    assert "it reaches the lbaas API" in api.fault(r)
    kept = {"address": "127.0.0.1", "protocol_port": 8080, "monitor_port": 9876}
    r = api.put(_path(pool), {"members": [kept]}, status=400)
    assert api.fault(r) == API_REFUSED.format(target="127.0.0.1:9876",
                                              fields="address and monitor_port",
                                              api="127.0.0.1:9876")
    assert api.lb_status(lb["id"]) == c.ACTIVE
    [only] = api.get(_path(pool)).json()["members"]
    assert only["monitor_port"] is None


def test_fully_populated_create_checks_its_members(api: Api) -> None:
    body = {"name": "full", "listeners": [{"protocol": "HTTP", "protocol_port": 80,
                                           "default_pool": {
                                               "name": "p", "protocol": "HTTP",
                                               "lb_algorithm": "ROUND_ROBIN",
                                               "members": [{"address": "127.0.0.1",
                                                            "protocol_port": 9876}]}}]}
    r = api.post("/loadbalancers", {"loadbalancer": body}, status=400)
    assert "it reaches the lbaas API" in api.fault(r)
    assert api.get("/loadbalancers").json()["loadbalancers"] == []


def test_the_postgresql_database_is_refused(api: Api, pool: dict[str, Any]) -> None:
    url = api.service.settings.database_url
    if not url:
        pytest.skip("the database is SQLite: no server to reach")
    port = make_url(url).port
    r = api.post(_path(pool), {"member": {"address": "127.0.0.1", "protocol_port": port}},
                 status=400)
    assert api.fault(r) == (f"127.0.0.1:{port} is not a valid option for member address and "
                            f"protocol_port: it reaches the lbaas database (127.0.0.1:{port})")


@pytest.fixture
def wildcard(tmp_path: Path) -> Iterator[Api]:
    noop = NoopDriver()
    svc = Service(make_settings(tmp_path, host="::", port=9876),
                  drivers={"noop": noop, "haproxy": noop})
    svc.start()
    try:
        with TestClient(svc.app) as client:
            yield Api(client, svc)
    finally:
        svc.stop()


def test_a_wildcard_bind_refuses_every_local_address(wildcard: Api) -> None:
    pool = wildcard.create_pool(loadbalancer_id=wildcard.create_lb()["id"])
    for address in ("127.0.0.1", "127.8.9.10", "::1"):
        r = wildcard.post(_path(pool), {"member": {"address": address, "protocol_port": 9876}},
                          status=400)
        assert "it reaches the lbaas API ([::]:9876)" in wildcard.fault(r)
    wildcard.create_member(pool["id"], address="127.8.9.10", protocol_port=9875)
    wildcard.create_member(pool["id"], address="192.0.2.200", protocol_port=9876)
