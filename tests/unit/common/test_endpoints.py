"""The control plane's endpoints and what reaches them (lbaas.common.endpoints)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from lbaas.common import endpoints
from lbaas.config import Settings

API = Settings(host="127.0.0.1", port=9876)


def _reached(settings: Settings, address: str, port: int) -> str | None:
    ep = endpoints.reached(endpoints.control_plane_endpoints(settings), address, port)
    return ep.what if ep else None


@pytest.mark.parametrize(("address", "port", "what"), [
    ("127.0.0.1", 9876, "the lbaas API"),
    ("::ffff:127.0.0.1", 9876, "the lbaas API"),  # IPv4-mapped: the same socket
    ("0.0.0.0", 9876, "the lbaas API"),  # connecting to 0.0.0.0 reaches this host
    ("127.0.0.1", 9877, None),
    ("127.0.0.2", 9876, None),  # nothing listens there: the API bound 127.0.0.1 only
    ("169.254.169.254", 80, "a reserved address ([networking] reserved_ips)"),
    ("169.254.169.254", 9876, "a reserved address ([networking] reserved_ips)"),
    ("::ffff:169.254.169.254", 1, "a reserved address ([networking] reserved_ips)"),
])
def test_a_specific_bind(address: str, port: int, what: str | None) -> None:
    assert _reached(API, address, port) == what


@pytest.mark.parametrize(("host", "address", "what"), [
    ("0.0.0.0", "127.0.0.1", "the lbaas API"),
    ("0.0.0.0", "127.45.6.7", "the lbaas API"),  # all of 127.0.0.0/8 is this host
    ("0.0.0.0", "::1", None),  # an IPv4 wildcard does not take IPv6
    ("::", "::1", "the lbaas API"),
    ("::", "127.3.2.1", "the lbaas API"),  # "::" takes IPv4 too (bindv6only=0)
    ("0.0.0.0", "192.0.2.200", None),  # TEST-NET-1 (RFC 5737): not this host's
    ("localhost", "127.0.0.1", "the lbaas API"),
])
def test_a_wildcard_bind_is_every_local_address(host: str, address: str,
                                                what: str | None) -> None:
    assert _reached(Settings(host=host, port=9876), address, 9876) == what
    assert _reached(Settings(host=host, port=9876), address, 9875) is None


def test_the_wildcard_covers_the_hosts_own_interface_addresses() -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        own = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2)]
    for address in own:
        assert _reached(Settings(host="0.0.0.0", port=9876), address, 9876) == "the lbaas API"


def test_a_postgresql_database_is_an_endpoint(tmp_path: Path) -> None:
    settings = API.replace(database_url="postgresql+psycopg://u:p@127.0.0.1:6543/lbaas")
    assert _reached(settings, "127.0.0.1", 6543) == "the lbaas database"
    default_port = API.replace(database_url="postgresql+psycopg://u@localhost/lbaas")
    assert _reached(default_port, "127.0.0.1", 5432) == "the lbaas database"
    socket_dir = API.replace(database_url="postgresql+psycopg://u@/lbaas?host=/run/pg")
    assert all(ep.what != "the lbaas database"
               for ep in endpoints.control_plane_endpoints(socket_dir))
    sqlite = API.replace(state_dir=tmp_path)
    assert [ep.what for ep in endpoints.control_plane_endpoints(sqlite)] == [
        "the lbaas API", "a reserved address ([networking] reserved_ips)"]


def test_reserved_ips_are_configurable() -> None:
    settings = API.replace(reserved_ips=("192.0.2.9", "2001:db8::9"))
    assert _reached(settings, "2001:db8::9", 443) is not None
    assert _reached(settings, "169.254.169.254", 80) is None
    assert str(endpoints.control_plane_endpoints(settings)[0]) == "127.0.0.1:9876"


def test_is_local() -> None:
    assert endpoints.is_local(ipaddress.ip_address("127.200.1.1"))
    assert not endpoints.is_local(ipaddress.ip_address("192.0.2.200"))
