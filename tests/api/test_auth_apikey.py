"""auth_strategy = apikey: standalone credentials made by ``lbaas key create``.

The key is the identity (its project and roles); headers the client adds are
ignored; the database holds only the key's SHA-256 digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from lbaas.cli.main import app
from lbaas.service import Service
from tests.api.base import HeldNoopDriver
from tests.conftest import fresh_database, make_settings

LBS = "/v2/lbaas/loadbalancers"


@pytest.fixture
def state(tmp_path: Path, sqlite_template: Path) -> Path:
    fresh_database(tmp_path, "", sqlite_template)
    return tmp_path / "state"


@pytest.fixture
def client(tmp_path: Path, state: Path) -> Iterator[TestClient]:
    noop = HeldNoopDriver()
    svc = Service(make_settings(tmp_path, auth_strategy="apikey"),
                  drivers={"noop": noop, "haproxy": noop})
    svc.start()
    with TestClient(svc.app, raise_server_exceptions=False) as c:
        yield c
    svc.stop()


def lbaas_key(state: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["key", *args, "--state-dir", str(state)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_keys_are_the_identity(client: TestClient, state: Path) -> None:
    member = lbaas_key(state, "create", "--project", "p1", "--role", "member")
    assert member.startswith("lbaas_")
    me = {"X-Auth-Token": member}
    r = client.post(LBS, json={"loadbalancer": {"name": "k"}},
                    headers={**me, "X-Project-Id": "p2", "X-Roles": "admin"})
    assert r.status_code == 201, r.text
    assert r.json()["loadbalancer"]["project_id"] == "p1"
    assert client.get(LBS, headers=me).json()["loadbalancers"][0]["name"] == "k"
    reader = {"X-Auth-Token": lbaas_key(state, "create", "--project", "p1", "--role", "reader")}
    assert client.get(LBS, headers=reader).status_code == 200
    assert client.post(LBS, json={"loadbalancer": {}}, headers=reader).status_code == 403
    other = {"X-Auth-Token": lbaas_key(state, "create", "--project", "p2")}
    lb_id = r.json()["loadbalancer"]["id"]
    assert client.get(f"{LBS}/{lb_id}", headers=other).status_code == 403


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": ""}, {"X-Auth-Token": "garbage"},
                                     {"X-Auth-Token": "lbaas_" + "A" * 43},
                                     {"X-Project-Id": "p1", "X-Roles": "admin"}])
def test_no_valid_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.get(LBS, headers=headers)
    assert r.status_code == 401, r.text
    assert client.get("/healthcheck").status_code == 200
    assert client.get("/").status_code == 200


def test_a_deleted_key_stops_working_and_none_is_stored(client: TestClient,
                                                        state: Path) -> None:
    secret = lbaas_key(state, "create", "--project", "p1", "--role", "admin",
                       "--description", "ops")
    assert client.get(LBS, headers={"X-Auth-Token": secret}).status_code == 200
    [row] = json.loads(lbaas_key(state, "list", "-f", "json"))
    assert row["project_id"] == "p1" and row["roles"] == "admin"
    assert secret not in (state / "lbaas.sqlite").read_bytes().decode("latin-1")
    lbaas_key(state, "delete", row["id"])
    assert client.get(LBS, headers={"X-Auth-Token": secret}).status_code == 401


def test_the_cli_sends_a_key_as_a_token(tmp_path: Path, state: Path) -> None:
    """``lbaas --os-token KEY --os-endpoint URL``, as ``openstack --os-auth-type
    admin_token`` would, against a real lbaas serve."""
    from tests.support.serve import Serve

    secret = lbaas_key(state, "create", "--project", "p1")
    serve = Serve(state, config="[api_settings]\nauth_strategy = apikey\n")
    serve.start()
    try:
        runner = CliRunner()
        ok = runner.invoke(app, ["--os-endpoint", serve.url, "--os-token", secret,
                                 "loadbalancer", "create", "--name", "x", "-f", "json"])
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["project_id"] == "p1"
        refused = runner.invoke(app, ["--os-endpoint", serve.url, "loadbalancer", "list"])
        assert refused.exit_code == 1 and "401" in refused.output
    finally:
        serve.stop()
