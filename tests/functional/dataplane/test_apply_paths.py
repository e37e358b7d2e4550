"""What an apply costs (issue 12): HAProxy parses a configuration once.

A first start parses it by starting (no ``haproxy -c`` before); a member
change made through the runtime API is planned from the view this process
applied and needs no ``haproxy -c`` (the server lines are the words ``add
server`` took); everything else is checked before the reload. A member
change's commands go first, the files after them (before the apply returns),
and nothing is lost when a command is refused or a file cannot be written.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from lbaas.dataplane import amphora, runtime
from lbaas.dataplane.amphora import Amphorae
from lbaas.dataplane.errors import RuntimeApiError
from lbaas.dataplane.spec import LoadBalancerSpec
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


def _serving_one_of_two(amphorae: Amphorae, backend: Callable[..., Backend],
                        ) -> tuple[LoadBalancerSpec, LoadBalancerSpec, int]:
    """Load balancer lb1 applied with member m1 (web1); the same with m2 (web2) too;
    its port."""
    web1, web2 = backend("web1"), backend("web2")
    port = free_port()
    lb = http_lb("lb1", port, (member("m1", web1.port),))
    amphorae.apply(lb)
    return lb, with_members(lb, member("m1", web1.port), member("m2", web2.port)), port


def _served(port: int) -> set[str]:
    return {httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(4)}


def test_a_member_change_reaches_haproxy_before_the_files(
        amphorae: Amphorae, backend: Callable[..., Backend],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lb, grown, port = _serving_one_of_two(amphorae, backend)
    f = amphorae.files("lb1")
    on_disk: list[tuple[str, object]] = []  # haproxy.cfg and spec.json at each command
    real = runtime.StatsClient.execute

    def execute(self: runtime.StatsClient, command: str) -> str:
        on_disk.append((f.cfg.read_text(), amphorae.last_spec("lb1")))
        return real(self, command)

    monkeypatch.setattr(runtime.StatsClient, "execute", execute)
    assert amphorae.apply(grown).action == "runtime"
    assert on_disk and all(cfg == amphorae.render(lb) and spec == lb for cfg, spec in on_disk)
    # Written before the apply returned: a reload or a restart starts with the member.
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(grown)
    assert amphorae.last_spec("lb1") == grown
    assert _served(port) == {"Welcome to web1\n", "Welcome to web2\n"}


def test_a_refused_runtime_command_reloads_from_the_checked_file(
        amphorae: Amphorae, backend: Callable[..., Backend], checks: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _lb, grown, port = _serving_one_of_two(amphorae, backend)
    real = runtime.StatsClient.execute

    def refusing(self: runtime.StatsClient, command: str) -> str:
        if command.startswith("set server"):  # after "add server": HAProxy holds half of it
            raise RuntimeApiError("refused by the test")
        return real(self, command)

    monkeypatch.setattr(runtime.StatsClient, "execute", refusing)
    assert amphorae.apply(grown).action == "reloaded"
    assert len(checks) == 1
    f = amphorae.files("lb1")
    assert not f.dirty.exists()
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(grown)
    assert amphorae.last_spec("lb1") == grown
    assert _served(port) == {"Welcome to web1\n", "Welcome to web2\n"}


def test_a_file_not_written_after_the_commands_is_written_by_the_next_apply(
        amphorae: Amphorae, backend: Callable[..., Backend],
        monkeypatch: pytest.MonkeyPatch) -> None:
    lb, grown, port = _serving_one_of_two(amphorae, backend)
    f = amphorae.files("lb1")
    real = Amphorae._write

    def full_disk(path: object, data: str, durable: bool = True) -> None:
        if path == f.new:
            raise OSError(28, "No space left on device")
        real(path, data, durable)  # type: ignore[arg-type]

    monkeypatch.setattr(Amphorae, "_write", staticmethod(full_disk))
    with pytest.raises(OSError):
        amphorae.apply(grown)
    # HAProxy took the member; the files still say what they said.
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(lb)
    assert amphorae.last_spec("lb1") == lb
    assert _served(port) == {"Welcome to web1\n", "Welcome to web2\n"}
    monkeypatch.setattr(Amphorae, "_write", staticmethod(real))
    # The same change again: "add server" is refused (it exists), so it reloads from
    # the file, which has the member from now on.
    assert amphorae.apply(grown).action == "reloaded"
    assert f.cfg.read_text() == f.good.read_text() == amphorae.render(grown)
    assert amphorae.last_spec("lb1") == grown
    assert _served(port) == {"Welcome to web1\n", "Welcome to web2\n"}
