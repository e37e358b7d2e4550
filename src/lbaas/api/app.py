"""The FastAPI application: Octavia's v2 API, mounted from one list of routers.

Every load-balancing router is served under ``/v2/lbaas`` and under the old
neutron-lbaas prefix ``/v2.0/lbaas`` (same handlers); the amphora admin API is
under ``/v2/octavia`` (and ``/v2.0/octavia``); the Neutron-shaped
network API is under ``/v2.0``; version discovery is at ``/`` (Octavia's) and
``/v2.0/`` (the networking API's).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline

from lbaas import __version__
from lbaas.api import errors, keymanager
from lbaas.api.auth import Authenticate
from lbaas.api.deps import ApiState, State, refuse_nul_in_url
from lbaas.api.middleware import BodySizeLimit
from lbaas.api.routes import (
    agent,
    amphora,
    availabilityzone,
    availabilityzoneprofile,
    container,
    flavor,
    flavorprofile,
    healthcheck,
    healthmonitor,
    l7policy,
    l7rule,
    listener,
    loadbalancer,
    member,
    metrics,
    network,
    pool,
    provider,
    quota,
    secret,
    securitygroup,
    subnet,
)
from lbaas.config import Settings

LBAAS_ROUTERS: list[APIRouter] = [
    loadbalancer.router, listener.router, pool.router, member.router, healthmonitor.router,
    l7policy.router, l7rule.router, quota.router, provider.router, flavor.router,
    flavorprofile.router, availabilityzone.router, availabilityzoneprofile.router,
]
NETWORK_ROUTERS: list[APIRouter] = [network.router, subnet.router, securitygroup.router,
                                    agent.router]
# What the Neutron-shaped API serves, as Neutron lists it at /v2.0/.
NETWORK_RESOURCES = (("network", "networks"), ("subnet", "subnets"),
                     ("security_group", "security-groups"), ("agent", "agents"))
# lbaas's own certificate store, in Barbican's shape (lbaas.api.keymanager).
KEY_MANAGER_ROUTERS: list[APIRouter] = [secret.router, container.router]
LBAAS_PREFIXES = ("/v2/lbaas", "/v2.0/lbaas")
# Octavia's admin API: amphorae; Octavia serves /v2.0 as an alias of /v2, and
# openstacksdk, given an unversioned endpoint, asks for /v2.0/octavia/amphorae.
OCTAVIA_ROUTERS: list[APIRouter] = [amphora.router]
OCTAVIA_PREFIXES = ("/v2/octavia", "/v2.0/octavia")

# Octavia API minor versions and the day each appeared; the last is CURRENT.
API_VERSIONS = [
    ("v2.0", "2016-12-11T00:00:00Z"), ("v2.1", "2018-04-20T00:00:00Z"),
    ("v2.2", "2018-07-31T00:00:00Z"), ("v2.3", "2018-12-18T00:00:00Z"),
    ("v2.4", "2018-12-19T00:00:00Z"), ("v2.5", "2019-01-21T00:00:00Z"),
    ("v2.6", "2019-01-25T00:00:00Z"), ("v2.7", "2018-01-25T12:00:00Z"),
    ("v2.8", "2019-02-12T00:00:00Z"), ("v2.9", "2019-03-04T00:00:00Z"),
    ("v2.10", "2019-03-05T00:00:00Z"), ("v2.11", "2019-06-24T00:00:00Z"),
    ("v2.12", "2019-09-11T00:00:00Z"), ("v2.13", "2019-09-13T00:00:00Z"),
    ("v2.14", "2019-11-10T00:00:00Z"), ("v2.15", "2020-03-10T00:00:00Z"),
    ("v2.16", "2020-03-15T00:00:00Z"), ("v2.17", "2020-04-29T00:00:00Z"),
    ("v2.18", "2020-04-29T01:00:00Z"), ("v2.19", "2020-05-12T00:00:00Z"),
    ("v2.20", "2020-08-02T00:00:00Z"), ("v2.21", "2020-09-03T00:00:00Z"),
    ("v2.22", "2020-09-04T00:00:00Z"), ("v2.23", "2020-09-07T00:00:00Z"),
    ("v2.24", "2020-10-15T00:00:00Z"), ("v2.25", "2021-10-02T00:00:00Z"),
    ("v2.26", "2022-08-29T00:00:00Z"), ("v2.27", "2023-05-05T00:00:00Z"),
    ("v2.28", "2023-11-08T00:00:00Z"), ("v2.29", "2024-10-15T00:00:00Z"),
    ("v2.30", "2025-02-26T00:00:00Z"),
]


# Swagger UI's files, as fastapi-offline ships and mounts them.
STATIC_DOCS = "/static-offline-docs"

# The routes of the app itself: version discovery and the API's documentation.
# Every endpoint is a module-level function that finds the service through the
# request (lbaas.api.deps.get_state), never a function made per app: FastAPI keeps
# the last 4,096 endpoint callables it examined in module-level caches
# (fastapi.dependencies.models), and one made per app (a closure over the app or
# its state, as fastapi-offline's /docs) kept every app of a process alive with
# its service's engine, worker and drivers (a test process builds hundreds: millions
# of objects, full garbage collections of seconds; tests/api/test_app_lifetime.py).
root = APIRouter()


@root.get(keymanager.PREFIX, tags=["Key manager (secrets)"])
def key_manager_version(request: Request, state: State) -> JSONResponse:
    """Barbican's API v1 description (python-barbicanclient's version discovery)."""
    base = keymanager.base_url(request, state)
    return JSONResponse({"version": keymanager.version_info(
        base, microversions=keymanager.wants_microversions(request))})


@root.get("/", tags=["Versions"])
def versions(request: Request, state: State) -> JSONResponse:
    """API version discovery (api-ref "List API versions"); Barbican's version list
    when the request asks for a key-manager microversion (lbaas.api.keymanager)."""
    if keymanager.asks_for_key_manager(request):
        return keymanager.versions_document(request, state)
    base = str(request.base_url)
    last = len(API_VERSIONS) - 1
    return JSONResponse({"versions": [
        {"id": vid, "status": "CURRENT" if i == last else "SUPPORTED", "updated": when,
         "links": [{"href": f"{base}v2", "rel": "self"}]}
        for i, (vid, when) in enumerate(API_VERSIONS)]})


@root.get("/v2.0", tags=["Versions"])
@root.get("/v2.0/", tags=["Versions"], include_in_schema=False)
def network_version(request: Request) -> JSONResponse:
    """The networking API's version document, for keystoneauth's discovery.

    Neutron lists its resources here; lbaas also names the version
    (``version``, status CURRENT, a self link to ``/v2.0/``), because its
    root ``/`` is Octavia's version list: keystoneauth, given a network
    endpoint ``http://HOST:PORT/v2.0/`` (an endpoint override, or a
    catalog entry of type ``network`` to which openstacksdk appends
    ``v2.0``), reads this document first and would otherwise fall back to
    the root and pick Octavia's ``/v2``.
    """
    base = f"{request.base_url}v2.0"
    return JSONResponse({
        "version": {"id": "v2.0", "status": "CURRENT",
                    "links": [{"href": f"{base}/", "rel": "self"}]},
        "resources": [{"name": name, "collection": collection,
                       "links": [{"href": f"{base}/{collection}", "rel": "self"}]}
                      for name, collection in NETWORK_RESOURCES]})


@root.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the app's OpenAPI document, its files from :data:`STATIC_DOCS`."""
    app: FastAPI = request.app
    prefix = request.scope.get("root_path", "")
    static = f"{prefix}{STATIC_DOCS}"
    return get_swagger_ui_html(
        openapi_url=f"{prefix}{app.openapi_url}", title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        swagger_js_url=f"{static}/swagger-ui-bundle.js",
        swagger_css_url=f"{static}/swagger-ui.css",
        swagger_favicon_url=f"{static}/favicon.png",
        swagger_ui_parameters=app.swagger_ui_parameters)


@root.get("/docs/oauth2-redirect", include_in_schema=False)
def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page (FastAPI's ``swagger_ui_oauth2_redirect_url``)."""
    return get_swagger_ui_oauth2_redirect_html()


def create_app(state: ApiState) -> FastAPI:
    """The API application serving ``state`` (settings, sessions, policy, drivers).

    Request bodies larger than ``[oslo_middleware] max_request_body_size``
    are refused with 413 (:class:`lbaas.api.middleware.BodySizeLimit`).
    """
    # /docs is Swagger UI from files fastapi-offline ships (under STATIC_DOCS): it
    # renders with no network, as on a host that reaches no CDN. fastapi-offline's own
    # /docs route is a closure over the app: the module's `root` router serves it.
    app = FastAPIOffline(title="lbaas", version=__version__,
                         description="Load balancing as a service: the OpenStack Octavia v2 "
                                     "API over HAProxy processes.",
                         docs_url=None, redoc_url=None, static_url=STATIC_DOCS,
                         dependencies=[Depends(refuse_nul_in_url)])
    app.add_middleware(BodySizeLimit, limit=(state.settings if state is not None
                                             else Settings()).max_request_body_size)
    app.state.lbaas = state
    app.add_middleware(Authenticate)
    errors.install(app)
    for prefix in LBAAS_PREFIXES:
        for router in LBAAS_ROUTERS:
            # The neutron-lbaas prefix is an alias: keep it out of the schema.
            app.include_router(router, prefix=prefix,
                               include_in_schema=prefix == LBAAS_PREFIXES[0])
    for prefix in OCTAVIA_PREFIXES:
        for router in OCTAVIA_ROUTERS:
            app.include_router(router, prefix=prefix,
                               include_in_schema=prefix == OCTAVIA_PREFIXES[0])
    for router in NETWORK_ROUTERS:
        app.include_router(router, prefix="/v2.0")
    for router in KEY_MANAGER_ROUTERS:
        app.include_router(router, prefix=keymanager.PREFIX)
    app.include_router(metrics.router)  # /metrics (Prometheus), outside the versioned API
    app.include_router(healthcheck.router)  # /healthcheck, likewise
    app.include_router(root)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with Octavia's 400 fault instead of FastAPI's 422."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Fault"] = errors.Fault.model_json_schema()
    components["KeyManagerFault"] = keymanager.KeyManagerFault.model_json_schema()
    fault_schema = {"$ref": "#/components/schemas/Fault"}
    octavia_fault = {"content": {"application/json": {"schema": fault_schema}}}
    barbican_fault = {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/KeyManagerFault"}}}}
    for url, path in schema.get("paths", {}).items():
        store = keymanager.is_keymanager_path(url)
        fault_ref = barbican_fault if store else octavia_fault
        for method, op in path.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            if store:
                for code, text in (("406", "Not acceptable"), ("413", "Too large"),
                                   ("415", "Unsupported media type")):
                    responses.setdefault(code, {"description": text, **fault_ref})
            elif method in ("post", "put"):
                responses.setdefault("501", {"description": "The provider does not support "
                                                            "a requested option", **fault_ref})
            if "requestBody" in op:
                responses.setdefault("413", {"description": "The body is larger than "
                                             "[oslo_middleware] max_request_body_size",
                                             **fault_ref})
            for code, text in (("400", "Bad request: a field failed validation"),
                               ("401", "Unauthorized"),
                               ("403", "Forbidden by policy or quota"),
                               ("404", "Not found"), ("409", "Conflict"),
                               ("500", "Internal error")):
                responses.setdefault(code, {"description": text, **fault_ref})
    app.openapi_schema = schema
    return schema
