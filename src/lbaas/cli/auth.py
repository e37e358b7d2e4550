"""Who the CLI is, and where it sends requests: OpenStack's usual settings.

Three ways, picked by what is set:

- a cloud (``--os-cloud`` / ``OS_CLOUD`` in ``clouds.yaml``) or Keystone
  credentials (``OS_AUTH_URL``, ``OS_USERNAME``, ``OS_PASSWORD``,
  ``OS_PROJECT_NAME``..., or the matching ``--os-*`` options): openstacksdk's
  config loader (the one the ``openstack`` CLI uses) reads them and
  keystoneauth1 gets a token; the endpoint is the catalog's
  ``load-balancer`` entry unless ``--os-endpoint`` overrides it (for
  ``lbaas secret``: the ``key-manager`` entry, Barbican, if there is one);
- a token and an endpoint (``--os-token`` / ``OS_TOKEN`` with
  ``--os-endpoint``): sent as ``X-Auth-Token`` as it is (a Keystone token, or
  an lbaas API key: ``openstack --os-auth-type admin_token`` does the same);
- nothing: the standalone API at ``--os-endpoint`` (default
  http://127.0.0.1:9876) with ``auth_strategy = noauth``; ``--project`` and
  ``--roles`` then send ``X-Project-Id`` and ``X-Roles``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lbaas.cli.client import DEFAULT_ENDPOINT


class AuthError(Exception):
    """The OpenStack settings do not give a token or an endpoint (a one-line reason)."""


@dataclass(frozen=True)
class Target:
    """Where to send requests and the headers that say who sends them."""

    endpoint: str
    headers: dict[str, str]


def resolve(endpoint: str | None, cloud: str | None, token: str | None,
            auth: dict[str, str | None], project: str | None = None,
            roles: str | None = None, region: str | None = None,
            interface: str | None = None,
            service_types: tuple[str, ...] = ("load-balancer",)) -> Target:
    """The :class:`Target` of the settings given (see the module docstring).

    ``auth`` holds keystoneauth option names (``auth_url``, ``username``,
    ``password``, ``project_name``...); None values are not set. Environment
    variables ``OS_*`` count as in the openstack CLI. ``service_types``: the catalog
    entries to look for, first found wins. Raises AuthError.
    """
    given = {k: v for k, v in auth.items() if v}
    cloud = cloud or os.environ.get("OS_CLOUD")
    token = token or os.environ.get("OS_TOKEN")
    if cloud or given.get("auth_url") or os.environ.get("OS_AUTH_URL"):
        return _keystone(endpoint, cloud, token, given, region, interface, service_types)
    if token:
        return Target(_base(endpoint or DEFAULT_ENDPOINT), {"X-Auth-Token": token})
    headers = {}
    if project:
        headers["X-Project-Id"] = project
        headers["X-Roles"] = roles or "member"
    elif roles:
        headers["X-Roles"] = roles
    return Target(_base(endpoint or DEFAULT_ENDPOINT), headers)


def _keystone(endpoint: str | None, cloud: str | None, token: str | None,
              auth: dict[str, str], region: str | None, interface: str | None,
              service_types: tuple[str, ...]) -> Target:
    from keystoneauth1 import exceptions as ks_exc
    from openstack.config import loader

    kwargs: dict[str, Any] = {"auth": dict(auth)}
    if token:
        kwargs["auth"] = {**auth, "token": token}
        kwargs["auth_type"] = "token"
    if region:
        kwargs["region_name"] = region
    if interface:
        kwargs["interface"] = interface
    try:
        config = loader.OpenStackConfig().get_one(cloud=cloud, **kwargs)
        session = config.get_session()
        token_value = session.get_token()
        for service_type in service_types if endpoint is None else ():
            endpoint = session.get_endpoint(service_type=service_type,
                                             interface=config.get_interface(),
                                             region_name=config.get_region_name())
            if endpoint:
                break
    except ks_exc.ClientException as e:
        raise AuthError(f"Keystone: {e}") from None
    except Exception as e:  # openstacksdk's config errors have no common base
        raise AuthError(f"OpenStack settings: {e}") from None
    if not endpoint:
        raise AuthError(f"no {' or '.join(service_types)} endpoint in the catalog: set "
                        f"--os-endpoint")
    if not token_value:
        raise AuthError("Keystone gave no token")
    return Target(_base(endpoint), {"X-Auth-Token": token_value})


def _base(endpoint: str) -> str:
    """The API root: requests name /v2/lbaas/... (or /v1/secrets/...), so a catalog URL's
    /v2 (or Barbican's /v1) goes."""
    url = endpoint.rstrip("/")
    for suffix in ("/v2.0", "/v2", "/v1"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url
