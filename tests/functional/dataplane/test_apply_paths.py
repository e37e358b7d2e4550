"""What an apply costs (issue 12): HAProxy parses a configuration once.

A first start parses it by starting (no ``haproxy -c`` before); a member
change made through the runtime API is planned from the view this process
applied and needs no ``haproxy -c`` (the server lines are the words ``add
server`` took); everything else is checked before the reload.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from lbaas.dataplane import amphora
from lbaas.dataplane.amphora import Amphorae
from lbaas.testing.backend import Backend
from tests.functional.dataplane.conftest import free_port
from tests.support.specs import http_lb, member, with_listener, with_members


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The configurations ``haproxy -c`` was run on."""
    seen: list[str] = []
    real = amphora.check_config

    def counting(cmd: str, path: object, timeout: float = 30.0) -> None:
        seen.append(str(path))
        real(cmd, path, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(amphora, "check_config", counting)
    return seen


def test_a_start_and_a_member_change_parse_the_configuration_once(
        amphorae: Amphorae, backend: Callable[..., Backend], checks: list[str]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    assert amphorae.apply(lb).action == "started"
    grown = with_members(lb, member("m1", web1.port), member("m2", web2.port))
    assert amphorae.apply(grown).action == "runtime"
    assert checks == []
    assert {httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(4)} == \
        {"Welcome to web1\n", "Welcome to web2\n"}
    f = amphorae.files("lb1")
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(grown)
    assert amphorae.last_spec("lb1") == grown
    # A change the runtime API cannot make is checked, then reloaded.
    assert amphorae.apply(with_listener(grown, timeout_client_data=20000)).action == "reloaded"
    assert len(checks) == 1


def test_a_member_change_is_planned_from_spec_json_after_a_restart_of_the_agent(
        amphorae: Amphorae, backend: Callable[..., Backend], checks: list[str]) -> None:
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    amphorae.apply(lb)
    again = Amphorae(amphorae.settings)  # nothing in memory: spec.json rendered again
    grown = with_members(lb, member("m1", web1.port), member("m2", web2.port))
    assert again.apply(grown).action == "runtime" and checks == []
