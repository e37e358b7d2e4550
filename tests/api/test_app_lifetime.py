"""A stopped service, its app and its database engine are freed once dropped.

FastAPI keeps the last 4,096 endpoint callables it examined in module-level
caches (``fastapi.dependencies.models``). An endpoint made per app (a closure
over the app or its state) kept that app alive, and with it the service's
engine, worker and drivers: a test process builds one per test, so it held
millions of objects, and each full garbage collection walked them all, a
pause of seconds in whichever test it fell on (a ``wait_idle`` timed out
with the worker idle but frozen, and xdist interrupted a worker still
collecting at the end of the run).
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from fastapi.testclient import TestClient

from lbaas.drivers.noop import NoopDriver
from lbaas.service import Service
from tests.conftest import make_settings


def _used_and_stopped(tmp_path: Path) -> tuple[weakref.ref[object], weakref.ref[object]]:
    """Weak references to the app and engine of a service that served every per-app
    route (versions, docs, key manager) and was stopped."""
    noop = NoopDriver()
    svc = Service(make_settings(tmp_path), drivers={"noop": noop, "haproxy": noop})
    svc.start()
    with TestClient(svc.app) as client:
        for path in ("/", "/v2.0", "/v2.0/", "/v1", "/docs", "/docs/oauth2-redirect",
                     "/openapi.json"):
            assert client.get(path).status_code == 200, path
        client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {"name": "lb"}})
        assert svc.reconciler.wait_idle()
    svc.stop()
    return weakref.ref(svc.app), weakref.ref(svc.engine)


def test_a_dropped_service_leaves_nothing_alive(tmp_path: Path) -> None:
    app, engine = _used_and_stopped(tmp_path)
    gc.collect()
    assert app() is None, "the app outlives its service (a per-app endpoint in a cache?)"
    assert engine() is None


def test_docs_are_served_from_the_package(tmp_path: Path) -> None:
    noop = NoopDriver()
    svc = Service(make_settings(tmp_path), drivers={"noop": noop, "haproxy": noop})
    try:
        with TestClient(svc.app) as client:
            page = client.get("/docs").text
            assert "/openapi.json" in page and "lbaas - Swagger UI" in page
            for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
                assert f"/static-offline-docs/{asset}" in page
                assert client.get(f"/static-offline-docs/{asset}").status_code == 200
            assert "oauth2-redirect" in page
    finally:
        svc.stop()
