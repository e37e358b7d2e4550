"""FastAPI dependencies and the steps every handler shares.

A handler has one shape: resolve the parent -> authorise -> validate -> lock
the load balancer and mark PENDING (:mod:`lbaas.worker.status`) -> persist ->
:func:`commit` (which wakes the worker) -> return. The pieces used by every
handler live here: the caller's context (:data:`Ctx`), a database session
(:data:`Db`), list parameters (:data:`Listing`), the provider check, and the
response helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lbaas.api.policy import Policy, RequestContext
from lbaas.api.query import ListQuery, parse_list_query, select_fields
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.config import Settings
from lbaas.db import models as m
from lbaas.drivers.base import ProviderDriver
from lbaas.worker import graph


@dataclass
class ApiState:
    """What the API needs from the running service, set once at start-up."""

    settings: Settings
    sessions: sessionmaker[Session]
    policy: Policy
    drivers: Mapping[str, ProviderDriver]
    notify: Callable[[], None]


def get_state(request: Request) -> ApiState:
    """The service state attached to the app by :func:`lbaas.api.app.create_app`."""
    state: ApiState = request.app.state.lbaas
    return state


State = Annotated[ApiState, Depends(get_state)]


def get_context(request: Request, state: State) -> RequestContext:
    """The caller, from ``X-Project-Id`` / ``X-Roles`` (see :mod:`lbaas.api.policy`)."""
    project = request.headers.get("x-project-id") or request.headers.get("x-tenant-id")
    roles_header = request.headers.get("x-roles")
    if project is None and roles_header is None:
        return RequestContext(project_id=state.settings.default_project_id, roles=("admin",),
                              is_admin=True, policy=state.policy)
    roles = tuple(r.strip() for r in (roles_header or "").split(",") if r.strip())
    return RequestContext(project_id=project or state.settings.default_project_id,
                          roles=roles, is_admin=False, policy=state.policy)


Ctx = Annotated[RequestContext, Depends(get_context)]


def get_db(state: State) -> Iterator[Session]:
    """A session for one request; whatever is not committed is rolled back."""
    with state.sessions() as session:
        yield session


Db = Annotated[Session, Depends(get_db)]


def get_listing(request: Request, state: State) -> ListQuery:
    """Parsed list parameters (limit, marker, sort, filters, tags, fields)."""
    return parse_list_query(request, state.settings.pagination_max_limit)


Listing = Annotated[ListQuery, Depends(get_listing)]


def commit(session: Session, state: ApiState) -> None:
    """Commit the request's transaction, then wake the provisioning worker."""
    session.commit()
    state.notify()


def resolve_project(ctx: RequestContext, requested: str | None) -> str:
    """The project a new object belongs to: the caller's, or another if allowed.

    Only callers passing ``load-balancer:admin`` may create objects in another
    project; others get PolicyForbidden (403).
    """
    if requested is None or requested == ctx.project_id:
        return ctx.project_id
    if not ctx.is_lb_admin:
        raise exc.PolicyForbidden()
    return requested


def visible_or_404(ctx: RequestContext, obj: Any, resource: str, obj_id: str) -> Any:
    """``obj`` if it exists and the caller may see it, else NotFound (404)."""
    if obj is None or not ctx.can_see(obj.project_id) or \
            getattr(obj, "provisioning_status", None) == c.DELETED:
        raise exc.NotFound(resource=resource, id=obj_id)
    return obj


def check_provider(state: ApiState, lb: m.LoadBalancer) -> None:
    """Ask ``lb``'s provider whether it can realise ``lb`` as now in the session.

    Raises ProviderUnsupportedOption (501) with the provider's reason.
    """
    name = c.PROVIDER_ALIASES.get(lb.provider, lb.provider)
    driver = state.drivers.get(name)
    if driver is None:
        raise exc.ProviderNotFound(prov=lb.provider)
    try:
        driver.validate(graph.build_spec(lb))
    except exc.UnsupportedOption as e:
        raise exc.ProviderUnsupportedOption(prov=lb.provider, user_msg=e.user_msg) from None


def check_quota(session: Session, state: ApiState, project_id: str, resource: str,
                adding: int = 1) -> None:
    """Raise QuotaExceeded (403) if ``project_id`` may not add ``adding`` ``resource``s.

    ``resource`` is a quota name: loadbalancer, listener, pool, member,
    healthmonitor, l7policy, l7rule. Counts objects not being deleted.
    """
    quota = session.get(m.Quota, project_id)
    limit = getattr(quota, resource, None) if quota is not None else None
    if limit is None:
        limit = getattr(state.settings.quotas, resource)
    if limit == c.QUOTA_UNLIMITED:
        return
    model: Any = QUOTA_MODELS[resource]
    used = session.scalar(
        select(func.count()).select_from(model)
        .where(model.project_id == project_id,
               model.provisioning_status != c.PENDING_DELETE)) or 0
    if used + adding > limit:
        raise exc.QuotaExceeded(resource=QUOTA_NAMES[resource])


QUOTA_MODELS: dict[str, type[m.Base]] = {
    "loadbalancer": m.LoadBalancer, "listener": m.Listener, "pool": m.Pool,
    "member": m.Member, "healthmonitor": m.HealthMonitor, "l7policy": m.L7Policy,
    "l7rule": m.L7Rule,
}
# Octavia names the resource in the 403 by its data model class, split into words.
QUOTA_NAMES = {"loadbalancer": "Load Balancer", "listener": "Listener", "pool": "Pool",
               "member": "Member", "healthmonitor": "Health Monitor", "l7policy": "L7 Policy",
               "l7rule": "L7 Rule"}


def respond(key: str, body: dict[str, Any], status: int = 200,
            fields: list[str] | None = None) -> JSONResponse:
    """``{key: body}`` with ``fields=`` applied."""
    return JSONResponse(status_code=status, content={key: select_fields(body, fields)})


def respond_list(key: str, bodies: list[dict[str, Any]], links: list[dict[str, str]],
                 fields: list[str] | None = None) -> JSONResponse:
    """``{key: [...], key_links: [...]}`` with ``fields=`` applied."""
    return JSONResponse(content={key: [select_fields(b, fields) for b in bodies],
                                 f"{key}_links": links})


def no_content() -> Response:
    """The 204 of a delete."""
    return Response(status_code=204)


def fields_of(request: Request) -> list[str] | None:
    """The ``fields=`` selection of a show request."""
    values = request.query_params.getlist("fields")
    if not values:
        return None
    return [f for v in values for f in v.split(",") if f]


# -- admin records (providers, flavors, availability zones, quotas) ----------

def provider_driver(state: ApiState, provider: str) -> ProviderDriver:
    """The driver of the enabled provider ``provider`` (``amphora`` means haproxy).

    Raises ProviderNotEnabled (400) if ``provider`` is not among the enabled
    providers, ProviderNotFound (501) if it is enabled but no driver is
    loaded for it (Octavia's ``driver_factory.get_driver``).
    """
    if provider not in state.settings.enabled_providers:
        raise exc.ProviderNotEnabled(prov=provider)
    driver = state.drivers.get(c.PROVIDER_ALIASES.get(provider, provider))
    if driver is None:
        raise exc.ProviderNotFound(prov=provider)
    return driver


def call_provider(provider: str, method: Callable[..., Any], *args: Any) -> Any:
    """``method(*args)`` of ``provider``'s driver, its errors made API errors.

    UnsupportedOption -> ProviderUnsupportedOption (501), NotImplementedError
    -> ProviderNotImplemented (501), DriverError -> ProviderDriverError (500),
    as Octavia's ``api/drivers/utils.py::call_provider``.
    """
    try:
        return method(*args)
    except exc.UnsupportedOption as e:
        raise exc.ProviderUnsupportedOption(prov=provider, user_msg=e.user_msg) from None
    except NotImplementedError:
        raise exc.ProviderNotImplemented(
            prov=provider, user_msg="This feature is not implemented by the provider.") from None
    except exc.DriverError as e:
        raise exc.ProviderDriverError(prov=provider, user_msg=e.reason) from None


def json_object(value: str, option: str) -> dict[str, Any]:
    """``value`` parsed as a JSON object (flavor_data, availability_zone_data).

    Raises InvalidOption (400, "<value> is not a valid option for <option>")
    if it is not JSON or not an object.
    """
    import json  # only the profile routes need it

    try:
        parsed = json.loads(value)
    except ValueError:
        raise exc.InvalidOption(value=value, option=option) from None
    if not isinstance(parsed, dict):
        raise exc.InvalidOption(value=value, option=option)
    return parsed


def refuse_nulls(changes: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Raise InvalidOption (400, "None is not a valid option for <name>") if an
    update sets one of ``names`` to null (Octavia's flavor/zone profile PUTs).
    """
    for name in names:
        if name in changes and changes[name] is None:
            raise exc.InvalidOption(value=None, option=name)


def ordered_by(listing: ListQuery, key: str) -> ListQuery:
    """``listing`` with ``key`` appended as the last sort key.

    For tables without ``created_at``/``id`` (quotas by project, availability
    zones by name): a total order keeps pages stable and markers meaningful.
    """
    if key not in [k for k, _ in listing.sort]:
        listing.sort = [*listing.sort, (key, c.DEFAULT_SORT_DIR)]
    return listing


# The 501 of provider errors (ProviderNotFound, ProviderUnsupportedOption,
# ProviderNotImplemented), for the OpenAPI document of the routes that ask a provider.
PROVIDER_ERRORS: dict[int | str, dict[str, Any]] = {
    501: {"description": "The provider cannot do what was asked",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fault"}}}},
}
