"""auth_strategy = noauth: headers are the identity, and only their absence is the admin.

Issue 9 item 3: an empty X-Project-Id with a role used to make the caller a
member of the default project (able to delete the standalone admin's load
balancers). Empty or malformed identity is now a 401 that changes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lbaas.config import ExposureError, Settings, check_exposure
from tests.api.base import Api

LBS = "/v2/lbaas/loadbalancers"


def raw(api: Api, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    return api.client.request(method, path, headers=headers, **kw)


def test_no_identity_headers_is_the_standalone_admin(api: Api) -> None:
    api.create_lb(_project="p1")
    mine = api.create_lb()
    assert mine["project_id"] == "admin"
    assert len(raw(api, "GET", LBS, {}).json()["loadbalancers"]) == 2


@pytest.mark.parametrize("headers", [
    {"X-Project-Id": "", "X-Roles": "member"},
    {"X-Project-Id": " ", "X-Roles": "admin"},
    {"X-Tenant-Id": "", "X-Roles": "admin"},
    {"X-Roles": "admin"},
    {"X-Roles": ""},
    {"X-User-Id": "u1"},
    {"X-Project-Name": "admin", "X-Roles": "admin"},
    {"X-Project-Id": "p1,p2", "X-Roles": "member"},
    {"X-Project-Id": "p1", "X-Tenant-Id": "p2", "X-Roles": "member"},
    {"X-Project-Id": "a b", "X-Roles": "member"},
    {"X-Project-Id": "x" * 256, "X-Roles": "member"},
    {"X-Project-Id": "p1", "X-Roles": "member admin"},
    {"X-Project-Id": "p1", "X-Roles": "mem\tber"},
], ids=lambda h: repr(h)[:60])
def test_empty_or_malformed_identity_is_401_and_changes_nothing(
        api: Api, headers: dict[str, str]) -> None:
    lb = api.create_lb()
    for method, path in (("GET", LBS), ("GET", f"{LBS}/{lb['id']}"),
                         ("DELETE", f"{LBS}/{lb['id']}"), ("PUT", f"{LBS}/{lb['id']}")):
        r = raw(api, method, path, headers, json={"loadbalancer": {"name": "x"}}
                if method == "PUT" else None)
        assert r.status_code == 401, (method, r.text)
        assert set(r.json()) == {"faultcode", "faultstring", "debuginfo"}
    assert api.show("loadbalancers", "loadbalancer", lb["id"])["name"] == "lb"


def test_a_project_without_roles_is_forbidden(api: Api) -> None:
    api.get("/loadbalancers", project="p1", roles="", status=403)
    api.get("/loadbalancers", project="p1", roles=" , ", status=403)


def test_tenant_id_names_the_project_too(api: Api) -> None:
    r = raw(api, "POST", LBS, {"X-Tenant-Id": "p7", "X-Roles": "member"},
            json={"loadbalancer": {"name": "t"}})
    assert r.status_code == 201, r.text
    assert r.json()["loadbalancer"]["project_id"] == "p7"


# -- the safe standalone default: noauth only on loopback --------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "::1", "localhost"])
def test_noauth_serves_on_loopback(host: str) -> None:
    check_exposure(Settings(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_noauth_refuses_other_addresses_naming_the_options(host: str) -> None:
    with pytest.raises(ExposureError) as e:
        check_exposure(Settings(host=host))
    assert "auth_strategy" in str(e.value) and "allow_insecure_noauth" in str(e.value)
    check_exposure(Settings(host=host, allow_insecure_noauth=True))
    check_exposure(Settings(host=host, auth_strategy="keystone"))


def test_serve_refuses_a_public_bind_with_noauth(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "lbaas", "serve", "--host", "0.0.0.0",
                        "--state-dir", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "auth_strategy" in r.stderr and "--allow-insecure-noauth" in r.stderr
    assert not (tmp_path / "lbaas.sqlite").exists()
