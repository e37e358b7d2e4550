"""A small client for API tests, after Octavia's functional ``base.py``.

``Api`` sends requests with an identity (no headers: the standalone admin;
``project=``/``roles=``: what an auth middleware would set), checks the
status code, and offers ``create_*`` factories that wait for ACTIVE.
"""

from __future__ import annotations

import base64
import gc
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from lbaas.common import constants as c
from lbaas.dataplane.spec import LoadBalancerSpec
from lbaas.db import models as m
from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service

PREFIX = "/v2/lbaas"
MEMBER_ROLE = "member"
# A well-formed id that names nothing.
GHOST = "6f8a3c1e-0000-4000-8000-000000000000"


class Api:
    """Requests against one service; ``project``/``roles`` pick the caller."""

    def __init__(self, client: TestClient, service: Service) -> None:
        self.client = client
        self.service = service

    # -- raw requests -----------------------------------------------------
    def request(self, method: str, path: str, *, status: int | None = None,
                project: str | None = None, roles: str | None = None,
                json: Any = None, params: Any = None, prefix: str = PREFIX) -> httpx.Response:
        headers = {}
        if project is not None:
            headers["X-Project-Id"] = project
        if roles is not None:
            headers["X-Roles"] = roles
        elif project is not None:
            headers["X-Roles"] = MEMBER_ROLE
        url = path if path.startswith(("/v2", "/v1")) or path == "/" else prefix + path
        response = self.client.request(method, url, json=json, params=params, headers=headers)
        if status is not None:
            assert response.status_code == status, (
                f"{method} {url} -> {response.status_code}, expected {status}: {response.text}")
        return response

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    # -- waiting and poking -----------------------------------------------
    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until the worker has settled every PENDING_* load balancer; if it does not
        in ``timeout`` seconds, fail with what the worker was doing (:func:`worker_report`)."""
        if not self.service.reconciler.wait_idle(timeout):
            raise AssertionError(f"worker did not settle in {timeout} s\n"
                                 f"{worker_report(self.service)}")

    def show(self, collection: str, key: str, obj_id: str) -> dict[str, Any]:
        """The body of ``GET /<collection>/<obj_id>`` (which must answer 200) under ``key``."""
        return dict(self.get(f"/{collection}/{obj_id}", status=200).json()[key])

    def status_of(self, collection: str, key: str, obj_id: str) -> str:
        """An object's provisioning_status: ``status_of("pools", "pool", pool_id)``."""
        return str(self.show(collection, key, obj_id)["provisioning_status"])

    def lb_status(self, lb_id: str) -> str:
        return self.status_of("loadbalancers", "loadbalancer", lb_id)

    def set_lb_status(self, lb_id: str, status: str) -> None:
        """Force a load balancer's provisioning_status (to test the 409s)."""
        with self.service.sessions() as session, session.begin():
            session.execute(update(m.LoadBalancer).where(m.LoadBalancer.id == lb_id)
                            .values(provisioning_status=status))

    def fault(self, response: httpx.Response) -> str:
        body = response.json()
        assert set(body) == {"faultcode", "faultstring", "debuginfo"}, body
        return str(body["faultstring"])

    # -- factories ----------------------------------------------------------
    def create(self, collection: str, key: str, body: dict[str, Any], *, wait: bool = True,
               **kw: Any) -> dict[str, Any]:
        obj: dict[str, Any] = self.post(f"/{collection}", {key: body}, status=201,
                                        **kw).json()[key]
        if wait:
            self.wait_idle()
        return obj

    def create_lb(self, wait: bool = True, **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        return self.create("loadbalancers", "loadbalancer", {"name": "lb", **fields},
                           wait=wait, **ident)

    def create_listener(self, lb_id: str, wait: bool = True, **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        body = {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80, **fields}
        return self.create("listeners", "listener", body, wait=wait, **ident)

    def create_pool(self, wait: bool = True, **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **fields}
        return self.create("pools", "pool", body, wait=wait, **ident)

    def create_member(self, pool_id: str, wait: bool = True, **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        body = {"address": "127.0.0.10", "protocol_port": 8080, **fields}
        return self.create(f"pools/{pool_id}/members", "member", body, wait=wait,
                           **ident)

    def create_health_monitor(self, pool_id: str, wait: bool = True,
                              **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        body = {"pool_id": pool_id, "type": "HTTP", "delay": 5, "timeout": 3,
                "max_retries": 2, **fields}
        return self.create("healthmonitors", "healthmonitor", body, wait=wait,
                           **ident)

    def create_l7policy(self, listener_id: str, wait: bool = True,
                        **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        body = {"listener_id": listener_id, "action": "REJECT", **fields}
        return self.create("l7policies", "l7policy", body, wait=wait, **ident)

    def store_secret(self, payload: bytes | str, project: str | None = None,
                     name: str = "secret") -> str:
        """A secret of lbaas's store (bytes: base64 octet-stream; str: text/plain); its ref."""
        body: dict[str, Any] = {"name": name}
        if isinstance(payload, bytes):
            body.update(payload=base64.b64encode(payload).decode(),
                        payload_content_type="application/octet-stream",
                        payload_content_encoding="base64")
        else:
            body.update(payload=payload, payload_content_type="text/plain")
        r = self.post("/v1/secrets", body, status=201, project=project)
        return str(r.json()["secret_ref"])

    def create_l7rule(self, l7policy_id: str, wait: bool = True,
                      **fields: Any) -> dict[str, Any]:
        ident = _identity(fields)
        body = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", **fields}
        return self.create(f"l7policies/{l7policy_id}/rules", "rule", body, wait=wait,
                           **ident)


def _identity(fields: dict[str, Any]) -> dict[str, Any]:
    """Move the ``_project``/``_roles`` pseudo-fields of a factory call to headers."""
    ident = {}
    if "_project" in fields:
        ident["project"] = fields.pop("_project")
    if "_roles" in fields:
        ident["roles"] = fields.pop("_roles")
    return ident


def worker_report(service: Service) -> str:
    """Why the worker is not idle: the PENDING_* load balancers in the database, the
    reconciler's in-flight set, queue, held claims and threads, the provider calls
    made, the size of the heap and the stack of every thread of this process."""
    lines = []
    try:
        with service.read_sessions() as session:
            rows = session.execute(
                select(m.LoadBalancer.id, m.LoadBalancer.provisioning_status,
                       m.LoadBalancer.provider, m.LoadBalancer.updated_at)
                .where(m.LoadBalancer.provisioning_status.in_(c.PENDING_STATUSES))).all()
        lines.append(f"pending load balancers: {[tuple(map(str, r)) for r in rows]}")
    except Exception as e:  # the database itself may be what is stuck
        lines.append(f"pending load balancers: unreadable ({type(e).__name__}: {e})")
    state = service.reconciler.state()
    lines.append(f"in flight: {list(state.in_flight)}; queued: {state.queued}; "
                 f"claims held: {list(state.claims_held)}; stopping: {state.stopping}")
    lines.append("reconciler threads: " + ", ".join(
        f"{name} {'alive' if alive else 'DEAD'}" for name, alive, _ in state.threads))
    for name, driver in service.drivers.items():
        calls = getattr(driver, "calls", None)
        if calls is not None:
            lines.append(f"driver {name}: last calls {calls[-5:]}")
    # A heap of millions of objects means full collections of seconds, during which
    # nothing runs (the cause of this failure once: tests/api/test_app_lifetime.py).
    lines.append(f"objects tracked by the garbage collector: {len(gc.get_objects())}")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        lines.append(f"--- thread {names.get(ident, ident)}, innermost frames:")
        lines.append("".join(traceback.format_list(traceback.extract_stack(frame)[-8:]))
                     .rstrip())
    return "\n".join(lines)


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.01) -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


# -- admin records and networks (factories used across test modules) ----------

def create_flavor_profile(api: Api, provider: str = "noop", data: str = "{}",
                          name: str = "fp") -> dict[str, Any]:
    body = {"name": name, "provider_name": provider, "flavor_data": data}
    return dict(api.post("/flavorprofiles", {"flavorprofile": body},
                         status=201).json()["flavorprofile"])


def create_flavor(api: Api, profile_id: str | None = None, name: str = "flavor",
                  **fields: Any) -> dict[str, Any]:
    if profile_id is None:
        profile_id = create_flavor_profile(api)["id"]
    body = {"name": name, "flavor_profile_id": profile_id, **fields}
    return dict(api.post("/flavors", {"flavor": body}, status=201).json()["flavor"])


def create_az_profile(api: Api, provider: str = "noop", data: str = "{}",
                      name: str = "azp") -> dict[str, Any]:
    body = {"name": name, "provider_name": provider, "availability_zone_data": data}
    return dict(api.post("/availabilityzoneprofiles", {"availability_zone_profile": body},
                         status=201).json()["availability_zone_profile"])


def create_az(api: Api, name: str = "az1", profile_id: str | None = None,
              **fields: Any) -> dict[str, Any]:
    if profile_id is None:
        profile_id = create_az_profile(api)["id"]
    body = {"name": name, "availability_zone_profile_id": profile_id, **fields}
    return dict(api.post("/availabilityzones", {"availability_zone": body},
                         status=201).json()["availability_zone"])


def create_network(api: Api, **fields: Any) -> dict[str, Any]:
    return dict(api.post("/v2.0/networks", {"network": {"name": "net", **fields}},
                         status=201).json()["network"])


def create_subnet(api: Api, network_id: str, cidr: str, **fields: Any) -> dict[str, Any]:
    body = {"network_id": network_id, "cidr": cidr, **fields}
    return dict(api.post("/v2.0/subnets", {"subnet": body}, status=201).json()["subnet"])


# -- holding the worker (to observe PENDING_* statuses without sleeping) --------

class HeldNoopDriver(NoopDriver):
    """A noop driver whose applies and deletes wait while it is held.

    Use it as the ``noop`` fixture of a test module, then :func:`held`: the
    worker cannot settle anything inside the block, so statuses read there
    are the API's, not a race with the worker.
    """

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()

    def apply(self, lb: LoadBalancerSpec) -> None:
        self.open.wait(10)
        super().apply(lb)

    def delete(self, lb: LoadBalancerSpec) -> None:
        self.open.wait(10)
        super().delete(lb)


@contextmanager
def held(api: Api) -> Iterator[None]:
    """Hold the worker (``noop`` must be a :class:`HeldNoopDriver`), then let it settle."""
    driver = api.service.drivers["noop"]
    assert isinstance(driver, HeldNoopDriver), "override the noop fixture with HeldNoopDriver"
    driver.open.clear()
    try:
        yield
    finally:
        driver.open.set()
    api.wait_idle()

