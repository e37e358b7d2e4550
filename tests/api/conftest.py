"""The API suite: a real service (noop provider) driven through its HTTP app.

``lb``, ``listener`` and ``pool`` are a load balancer, an HTTP listener on it
and a pool of it, created through the API and settled (ACTIVE).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas.service import Service
from tests.api.base import Api


@pytest.fixture
def api(service: Service) -> Iterator[Api]:
    with TestClient(service.app, raise_server_exceptions=False) as client:
        yield Api(client, service)


@pytest.fixture
def lb(api: Api) -> dict[str, Any]:
    return api.create_lb()


@pytest.fixture
def listener(api: Api, lb: dict[str, Any]) -> dict[str, Any]:
    return api.create_listener(lb["id"])


@pytest.fixture
def pool(api: Api, lb: dict[str, Any]) -> dict[str, Any]:
    return api.create_pool(loadbalancer_id=lb["id"])

