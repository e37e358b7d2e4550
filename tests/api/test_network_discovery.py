"""What keystoneauth's version discovery and tempest read of the networking API.

openstacksdk resolves ``--vip-subnet-id NAME`` through the network service:
keystoneauth first reads the endpoint (``http://HOST:PORT/v2.0/``) for a
version document, and falls back to the root ``/``, which is Octavia's.
"""

from __future__ import annotations

import pytest

from tests.api.base import Api


@pytest.mark.parametrize("path", ["/v2.0", "/v2.0/"])
def test_v2_0_names_its_version_and_resources(api: Api, path: str) -> None:
    body = api.get(path, status=200).json()
    assert body["version"] == {"id": "v2.0", "status": "CURRENT",
                               "links": [{"href": "http://testserver/v2.0/", "rel": "self"}]}
    collections = {r["collection"]: r["links"][0]["href"] for r in body["resources"]}
    assert collections == {"networks": "http://testserver/v2.0/networks",
                           "subnets": "http://testserver/v2.0/subnets",
                           "security-groups": "http://testserver/v2.0/security-groups",
                           "agents": "http://testserver/v2.0/agents"}
    for href in collections.values():
        api.get(href.removeprefix("http://testserver"), status=200)


def test_the_root_stays_octavias(api: Api) -> None:
    versions = api.get("/", status=200).json()["versions"]
    assert {v["links"][0]["href"] for v in versions} == {"http://testserver/v2"}


def test_no_security_groups(api: Api) -> None:
    # tempest's credential cleanup: list the project's "default" group, delete each
    r = api.get("/v2.0/security-groups", params={"project_id": "p1", "name": "default"},
                project="p1", roles="member", status=200)
    assert r.json() == {"security_groups": []}
    r = api.get("/v2.0/security-groups/6f8a3c1e-0000-4000-8000-000000000000", status=404)
    assert api.fault(r) == "Security Group 6f8a3c1e-0000-4000-8000-000000000000 not found."
