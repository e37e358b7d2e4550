"""lbaas's service user (``[service_auth]``): a keystoneauth session, as Octavia's.

Read by the parts of lbaas that call other OpenStack services as lbaas itself:
``barbican_cert_manager`` (:mod:`lbaas.certificates.barbican`) and
``network_driver = neutron`` (:mod:`lbaas.network.neutron`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SERVICE_AUTH = "service_auth"


def service_session(config_files: Sequence[str], needed_by: str) -> Any:
    """A keystoneauth1 ``Session`` of the ``[service_auth]`` user of ``config_files``
    (keystoneauth's auth and session options: ``auth_type``, ``auth_url``,
    ``username``, ``password``, ``project_name``, ...); it renews its own token.

    Raises ValueError naming ``needed_by`` if the section is missing or incomplete.
    """
    from keystoneauth1 import loading
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    loading.register_auth_conf_options(conf, SERVICE_AUTH)
    loading.register_session_conf_options(conf, SERVICE_AUTH)
    conf([], project="lbaas", default_config_files=list(config_files))
    try:
        auth = loading.load_auth_from_conf_options(conf, SERVICE_AUTH)
    except Exception as e:  # keystoneauth's MissingRequiredOptions, NoMatchingPlugin
        raise ValueError(f"[service_auth] is incomplete: {e}") from None
    if auth is None:
        raise ValueError(f"{needed_by} needs lbaas's service user in [service_auth] "
                         "(auth_type, auth_url, username, password, project_name, ...), "
                         "as Octavia's does.")
    return loading.load_session_from_conf_options(conf, SERVICE_AUTH, auth=auth)
