"""The API suite: a real service (noop provider) driven through its HTTP app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from lbaas.service import Service
from tests.api.base import Api


@pytest.fixture
def api(service: Service) -> Iterator[Api]:
    with TestClient(service.app, raise_server_exceptions=False) as client:
        yield Api(client, service)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.api.test_schemathesis import REQUESTS

    if REQUESTS["count"]:
        terminalreporter.write_line(f"schemathesis: {REQUESTS['count']} requests tried")
