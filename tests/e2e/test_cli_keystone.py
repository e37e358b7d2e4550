"""The ``lbaas`` CLI in a Keystone cloud: OS_* variables, clouds.yaml, a token.

A real Keystone (with lbaas in its catalog as ``load-balancer``) and a real
``lbaas serve`` with ``auth_strategy = keystone``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lbaas.cli.main import app
from lbaas.testing.keystone import Keystone
from tests.support.serve import Serve, clouds_yaml, keystone_serve, region_of

OS_VARS = ("OS_CLOUD", "OS_AUTH_URL", "OS_TOKEN", "OS_USERNAME", "OS_PASSWORD",
           "OS_PROJECT_NAME", "OS_CLIENT_CONFIG_FILE", "LBAAS_URL")


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, keystone: Keystone) -> Iterator[Serve]:
    # In a catalog region of its own: under xdist each worker has its own lbaas serve.
    s = keystone_serve(tmp_path_factory.mktemp("cli-ks") / "state", keystone,
                       ("load-balancer",))
    yield s
    s.stop()


def openrc(keystone: Keystone, serve: Serve, user: str) -> dict[str, str]:
    """``OS_*`` variables for ``user`` in ``serve``'s catalog region."""
    return {**keystone.openrc(user), "OS_REGION_NAME": region_of(serve)}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OS_VARS:
        monkeypatch.delenv(name, raising=False)


def run(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> Result:
    result = CliRunner(env=env).invoke(app, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result


def test_os_variables_and_the_catalog(serve: Serve, keystone: Keystone) -> None:
    env = openrc(keystone, serve, "lb-one-member")
    lb = json.loads(run("loadbalancer", "create", "--name", "by-env", "-f", "json",
                        env=env).stdout)
    assert lb["project_id"] == keystone.info["projects"]["lb-one"]
    names = [x["name"] for x in json.loads(run("loadbalancer", "list", "-f", "json",
                                                env=env).stdout)]
    assert names == ["by-env"]
    # Another project's member sees none of it.
    other = openrc(keystone, serve, "lb-two-member")
    assert json.loads(run("loadbalancer", "list", "-f", "json", env=other).stdout) == []


def test_clouds_yaml(serve: Serve, keystone: Keystone, tmp_path: Path) -> None:
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds_yaml(keystone, serve, tmp_path / "clouds.yaml"))}
    out = run("--os-cloud", "lb-one-reader", "loadbalancer", "list", "-f", "json", env=env)
    assert isinstance(json.loads(out.stdout), list)
    refused = run("--os-cloud", "lb-one-reader", "loadbalancer", "create", env=env, ok=False)
    assert "Policy does not allow" in refused.output


def test_a_token_and_an_endpoint(serve: Serve, keystone: Keystone) -> None:
    token = keystone.token("lb-one-member")
    run("--os-endpoint", serve.url, "--os-token", token, "loadbalancer", "list")
    run("loadbalancer", "list", env={"OS_TOKEN": token, "LBAAS_URL": serve.url})
    bad = run("--os-endpoint", serve.url, "--os-token", "garbage", "loadbalancer", "list",
              ok=False)
    assert "401" in bad.output


def test_without_credentials_a_keystone_lbaas_says_401(serve: Serve) -> None:
    out = run("--os-endpoint", serve.url, "loadbalancer", "list", ok=False)
    assert "401" in out.output


def test_wrong_password_is_one_line(serve: Serve, keystone: Keystone) -> None:
    env = {**openrc(keystone, serve, "lb-one-member"), "OS_PASSWORD": "wrong"}
    out = run("loadbalancer", "list", env=env, ok=False)
    assert out.output.startswith("Error: Keystone:"), out.output
