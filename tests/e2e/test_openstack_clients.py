"""The OpenStack clients against lbaas through a real Keystone.

``openstack loadbalancer`` (python-openstackclient + python-octaviaclient, in
``.venv-tempest``, as an operator has them) and openstacksdk's load-balancer
and network calls, with clouds.yaml users of the test Keystone. lbaas
(``auth_strategy = keystone``, noop provider, its own networks) is in the
catalog as ``load-balancer`` and ``network`` in a region of its own (one per
``lbaas serve``: xdist workers share the run's Keystone), so the clients
find the VIP subnet by its *name* through ``/v2.0/``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest

from lbaas.testing.keystone import REPO, Keystone
from tests.support.serve import Serve, clouds_yaml, keystone_serve

SUBNET = "lb-vip-subnet"  # lbaas's default subnet, by name
OPENSTACK = Path(os.environ.get("LBAAS_TEMPEST_VENV", REPO / ".venv-tempest")) / "bin" / "openstack"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Serve]:
    s = keystone_serve(tmp_path_factory.mktemp("os-clients") / "state", keystone,
                       ("load-balancer", "network"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone,
           serve: Serve) -> Path:
    """The Keystone's clouds.yaml with every cloud in ``serve``'s region."""
    return clouds_yaml(keystone, serve,
                       tmp_path_factory.mktemp("os-clients-config") / "clouds.yaml")


def openstack_cli(clouds: Path, cloud: str, *args: str, json_format: bool = True) -> object:
    """``openstack --os-cloud CLOUD ARGS -f json``'s parsed output (None if there is
    none). ``json_format`` False: no ``-f`` option (delete; status show prints JSON)."""
    if not OPENSTACK.exists():
        if os.environ.get("LBAAS_TEST_KEYSTONE") == "required":
            pytest.fail(f"{OPENSTACK} is missing: run scripts/setup --test")
        pytest.skip("python-openstackclient not installed (scripts/setup --test)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(clouds)
    fmt = ["-f", "json"] if json_format else []
    out = subprocess.run([str(OPENSTACK), "--os-cloud", cloud, *args, *fmt], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"openstack {' '.join(args)}: {out.stderr[-2000:]}"
    return json.loads(out.stdout) if out.stdout.strip() else None


def test_openstack_loadbalancer_by_subnet_name(serve: Serve, keystone: Keystone,
                                               clouds: Path) -> None:
    def cli(*args: str) -> dict[str, object]:
        result = openstack_cli(clouds, "lb-one-member", "loadbalancer", *args)
        assert isinstance(result, dict)
        return result

    lb = cli("create", "--name", "web", "--vip-subnet-id", SUBNET, "--wait")
    assert lb["provisioning_status"] == "ACTIVE"
    assert lb["project_id"] == keystone.info["projects"]["lb-one"]
    listener = cli("listener", "create", "--name", "web-80", "--protocol", "HTTP",
                   "--protocol-port", "80", "--connection-limit", "1000", "web", "--wait")
    assert listener["connection_limit"] == 1000
    pool = cli("pool", "create", "--name", "web-pool", "--listener", "web-80",
               "--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN", "--wait")
    member = cli("member", "create", "--name", "app-1", "--subnet-id", SUBNET,
                 "--address", "127.1.200.1", "--protocol-port", "8080", "web-pool", "--wait")
    monitor = cli("healthmonitor", "create", "--name", "web-check", "--type", "HTTP",
                  "--delay", "5", "--timeout", "3", "--max-retries", "3", "--url-path",
                  "/health", "web-pool", "--wait")
    assert monitor["provisioning_status"] == "ACTIVE"
    tree = openstack_cli(clouds, "lb-one-member", "loadbalancer", "status", "show", "web",
                         json_format=False)
    assert isinstance(tree, dict)
    got = tree["loadbalancer"]["listeners"][0]["pools"][0]
    assert got["id"] == pool["id"]
    assert got["members"][0]["id"] == member["id"]
    assert got["health_monitor"]["id"] == monitor["id"]
    assert lb["vip_subnet_id"] == member["subnet_id"]  # the name resolved to one id
    # Another project's member sees none of it; the admin lists the amphorae.
    assert openstack_cli(clouds, "lb-two-member", "loadbalancer", "list") == []
    assert isinstance(openstack_cli(clouds, "lbaas-admin", "loadbalancer", "amphora",
                                    "list"), list)
    openstack_cli(clouds, "lb-one-member", "loadbalancer", "delete", "--cascade",
                  "--wait", "web", json_format=False)
    assert openstack_cli(clouds, "lb-one-member", "loadbalancer", "list") == []


def test_openstacksdk_load_balancer_calls(serve: Serve, clouds: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    conn = openstack.connect(cloud="lb-two-member")
    lbs = conn.load_balancer
    subnet = conn.network.find_subnet(SUBNET, ignore_missing=False)
    lb = lbs.create_load_balancer(name="sdk", vip_subnet_id=subnet.id)
    lbs.wait_for_load_balancer(lb.id, interval=0.2, wait=60)
    listener = lbs.create_listener(name="sdk-80", protocol="TCP", protocol_port=80,
                                   load_balancer_id=lb.id)
    lbs.wait_for_load_balancer(lb.id, interval=0.2, wait=60)
    pool = lbs.create_pool(name="sdk-pool", protocol="TCP", lb_algorithm="LEAST_CONNECTIONS",
                           listener_id=listener.id)
    lbs.wait_for_load_balancer(lb.id, interval=0.2, wait=60)
    member = lbs.create_member(pool, address="127.1.200.2", protocol_port=9000, weight=3)
    lbs.wait_for_load_balancer(lb.id, interval=0.2, wait=60)
    monitor = lbs.create_health_monitor(pool_id=pool.id, type="TCP", delay=5, timeout=3,
                                        max_retries=2)
    lbs.wait_for_load_balancer(lb.id, interval=0.2, wait=60)
    assert lbs.get_member(member, pool).weight == 3
    assert lbs.get_health_monitor(monitor).operating_status == "ONLINE"
    assert [x.id for x in lbs.load_balancers()] == [lb.id]
    assert {p.name for p in lbs.providers()} >= {"haproxy", "noop"}
    lbs.update_listener(listener, connection_limit=500)
    lbs.wait_for_load_balancer(lb.id, interval=0.2, wait=60)
    assert lbs.get_listener(listener).connection_limit == 500
    assert lbs.get_load_balancer_statistics(lb.id).total_connections == 0
    # Another project may not see it: Octavia's 403 for an existing object.
    other = openstack.connect(cloud="lb-one-member")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        other.load_balancer.get_load_balancer(lb.id)
    lbs.delete_load_balancer(lb.id, cascade=True)
    lbs.wait_for_delete(lb, interval=0.2, wait=60)
    assert list(lbs.load_balancers()) == []
