"""FastAPI dependencies and the steps every handler shares.

A handler has one shape: resolve the parent -> authorise -> validate -> lock
the load balancer and mark PENDING (:mod:`lbaas.worker.status`) -> persist ->
:func:`commit` (which wakes the worker) -> return. The pieces used by every
handler live here: the caller's context (:data:`Ctx`), a database session
(:data:`Db`), a list request (:data:`Listing`), the ``fields=`` of a show
(:data:`Fields`), the lookups that answer 404, the provider and quota
checks, and the response helpers.

Objects named in the path are looked up inside the handler
(:func:`get_visible`), not by a dependency: FastAPI runs dependencies
before it validates the body, and Octavia answers a bad body with a 400 even
for an object that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, object_session, sessionmaker
from sqlalchemy.orm.interfaces import ORMOption

from lbaas.api import auth
from lbaas.api.policy import Policy, RequestContext
from lbaas.api.query import (
    ListQuery,
    Page,
    paginate,
    parse_list_query,
    select_fields,
    split_values,
)
from lbaas.certificates.base import CertManager
from lbaas.certificates.store import SecretBox
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.common import validate
from lbaas.common.endpoints import Endpoint
from lbaas.config import Settings
from lbaas.db import locks
from lbaas.db import models as m
from lbaas.drivers.base import ProviderDriver
from lbaas.network.base import Caller, NetworkDriver
from lbaas.worker import graph

Row = TypeVar("Row", bound=m.Base)
T = TypeVar("T")


class KeptBodies:
    """The bodies of listed objects as JSON bytes, each kept by the object's id with the
    key it was written from (:func:`lbaas.api.routes.loadbalancer.list_load_balancers`):
    a page of a thousand load balancers, none changed since it was last listed, is
    answered from its rows without writing a body (issue 12: a list of a thousand
    load balancers costs its query, not a thousand bodies).

    A key is bytes that the caller makes from the row, so that it changes whenever
    the body would (:func:`lbaas.api.routes.loadbalancer._key_of`); a body is handed
    out only for the key it was written from. Each is kept as one bytes object,
    the key then the body (small objects kept from a request's rows would keep
    the memory of its whole page: 1,000 load balancers kept, 8 MiB of RSS instead
    of under 1). At most ``limit`` bodies are kept (then all are forgotten, and
    written again as they are listed). Safe to share between request threads.
    """

    def __init__(self, limit: int = 20000) -> None:
        self._limit = limit
        self._kept: dict[str, bytes] = {}

    def get(self, ident: str, key: bytes) -> memoryview | None:
        """The body kept for ``ident`` if it was written from ``key``, else None."""
        kept = self._kept.get(ident)
        return memoryview(kept)[len(key):] if kept is not None and kept.startswith(key) \
            else None

    def put(self, ident: str, key: bytes, body: dict[str, Any]) -> memoryview:
        """``body`` (of ``ident``, written from ``key``) as JSON bytes, kept."""
        kept = key + orjson.dumps(body)
        if len(self._kept) >= self._limit:
            self._kept.clear()
        self._kept[ident] = kept
        return memoryview(kept)[len(key):]


@dataclass
class ApiState:
    """What the API needs from the running service, set once at start-up."""

    settings: Settings
    sessions: sessionmaker[Session]
    policy: Policy
    drivers: Mapping[str, ProviderDriver]
    notify: Callable[[str | None], None]  # the worker's; a load balancer's id, or None
    network: NetworkDriver
    authenticator: auth.Authenticator
    certificates: CertManager  # checks certificate references (lbaas.api.tls)
    # What members may not reach (lbaas.common.endpoints.control_plane_endpoints).
    endpoints: tuple[Endpoint, ...] = ()
    secret_box: SecretBox | None = None  # lbaas's own store (/v1); None with Barbican
    # Sessions for requests that only read (GET): never wait for a writer.
    read_sessions: sessionmaker[Session] | None = None
    # Listed load balancers' bodies (KeptBodies).
    load_balancer_bodies: KeptBodies = field(default_factory=KeptBodies)


def get_state(request: Request) -> ApiState:
    """The service state attached to the app by :func:`lbaas.api.app.create_app`."""
    state: ApiState = request.app.state.lbaas
    return state


State = Annotated[ApiState, Depends(get_state)]


def get_context(request: Request, state: State) -> RequestContext:
    """The caller: the identity :mod:`lbaas.api.auth` established, judged by the policy.

    Raises NotAuthorized (401) if no authenticator ran for this request.
    """
    identity = request.scope.get(auth.SCOPE_KEY)
    if identity is None:
        raise exc.NotAuthorized()
    return state.policy.context(identity)


Ctx = Annotated[RequestContext, Depends(get_context)]


def get_db(request: Request, state: State) -> Iterator[Session]:
    """A session for one request; whatever is not committed is rolled back.

    A GET reads in a read-only session (a SQLite WAL reader, which never
    waits for a writer); any other method may write, so its transaction
    takes the write lock first (:mod:`lbaas.db.session`).
    """
    factory = state.sessions
    if request.method in ("GET", "HEAD") and state.read_sessions is not None:
        factory = state.read_sessions
    with factory() as session:
        yield session


Db = Annotated[Session, Depends(get_db)]


def refuse_nul_in_url(request: Request) -> None:
    """Every route's first step: no NUL in a path or query parameter.

    PostgreSQL cannot compare or store a string holding NUL; the body's
    strings are checked by :class:`lbaas.api.schemas.common.RequestModel`.
    Raises InvalidInput (400) naming the parameter.
    """
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        for text in (name, value):
            try:
                validate.no_nul(text)
            except ValueError as e:
                raise exc.InvalidInput(field=name, value=value, detail=f"{e}.") from None


def get_fields(request: Request) -> list[str] | None:
    """The ``fields=`` selection of a show request (None: every field)."""
    values = request.query_params.getlist("fields")
    return split_values(values) if values else None


Fields = Annotated[list[str] | None, Depends(get_fields)]


@dataclass
class ListRequest:
    """A list request: its parsed query string and what paging it needs."""

    query: ListQuery
    request: Request
    session: Session
    base_uri: str

    def respond(self, key: str, stmt: Select[Any], model: type[m.Base],
                columns: Mapping[str, InstrumentedAttribute[Any]],
                dump: Callable[[Any], dict[str, Any]],
                links_key: str | None = None) -> JSONResponse:
        """One page of ``stmt`` (a select of ``model``) as ``{key: [...], key_links: [...]}``.

        ``columns`` names what may be filtered and sorted on, ``dump`` makes
        a row's body; ``links_key`` where Octavia names the links otherwise.
        Raises the 400s of :func:`lbaas.api.query.paginate`.
        """
        page = self.page(stmt, model, columns)
        return self.answer(key, [dump(row) for row in page.rows], page, links_key)

    def page(self, stmt: Select[Any], model: type[m.Base],
             columns: Mapping[str, InstrumentedAttribute[Any]]) -> Page:
        """One page of ``stmt`` (a select of ``model``, or of its columns: the driver's tuples);
        raises the 400s of :func:`lbaas.api.query.paginate`."""
        return paginate(self.session, self.request, self.query, stmt, model, columns,
                        self.base_uri)

    def answer(self, key: str, bodies: list[dict[str, Any]], page: Page,
               links_key: str | None = None) -> JSONResponse:
        """``{key: bodies, key_links: page's links}`` with ``fields=`` applied."""
        if self.query.fields:
            bodies = [select_fields(body, self.query.fields) for body in bodies]
        return JSONBody({key: bodies, links_key or f"{key}_links": page.links})

    def answer_written(self, key: str, bodies: Sequence[bytes | memoryview],
                       page: Page) -> Response:
        """:meth:`answer` of bodies written as JSON already (:class:`KeptBodies`), without
        ``fields=``: the same bytes."""
        return Response(b'{"%s":[%s],"%s_links":%s}' % (
            key.encode(), b",".join(bodies), key.encode(), orjson.dumps(page.links)),
            media_type="application/json")


class JSONBody(JSONResponse):
    """A JSON response written by orjson: the bytes of starlette's ``JSONResponse``
    (compact, UTF-8; dict keys that are not strings made strings, as ``json`` does),
    in a twentieth of the time for a list of a thousand load balancers (issue 12)."""

    def render(self, content: Any) -> bytes:
        """``content`` as JSON bytes."""
        try:  # (keys that are all strings, the usual: written at half the cost)
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def get_listing(request: Request, state: State, db: Db) -> ListRequest:
    """Parsed list parameters (limit, marker, sort, filters, tags, fields)."""
    return ListRequest(query=parse_list_query(request, state.settings.pagination_max_limit),
                       request=request, session=db, base_uri=state.settings.api_base_uri)


Listing = Annotated[ListRequest, Depends(get_listing)]


def listed_rows(ctx: RequestContext, listing: ListRequest, resource: str, stmt: Select[Any],
                model: Any) -> Select[Any]:
    """Authorise a list of ``resource`` and limit ``stmt`` to what the caller may list.

    Octavia's ``_auth_get_all``: a caller passing ``<resource>:get_all-global``
    lists every project (``project_id=`` filters as usual); anyone else must
    pass ``<resource>:get_all`` on each project named by ``project_id=`` (or
    ``tenant_id=``), or on their own, and sees only their own project's rows.
    Raises PolicyForbidden (403).
    """
    if ctx.allowed(resource, "get_all-global"):
        return stmt
    filters = listing.query.filters
    asked = set(filters.get("project_id", []) + filters.get("tenant_id", []))
    for project_id in asked or {ctx.project_id}:
        ctx.authorize(resource, "get_all", project_id)
    return stmt.where(model.project_id == ctx.project_id)


def commit(session: Session, state: ApiState, lb_id: str | None = None) -> None:
    """Commit the request's transaction, then wake the provisioning worker; ``lb_id``:
    the load balancer the change marked PENDING_*, handed to a worker thread at once
    (:meth:`lbaas.worker.reconciler.Reconciler.notify`)."""
    session.commit()
    state.notify(lb_id)


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


# -- lookups -------------------------------------------------------------------

# Octavia names a resource in its messages by its data model class, split into words.
RESOURCE_NAMES: dict[type[m.Base], str] = {
    m.LoadBalancer: "Load Balancer", m.Listener: "Listener", m.Pool: "Pool",
    m.Member: "Member", m.HealthMonitor: "Health Monitor", m.L7Policy: "L7 Policy",
    m.L7Rule: "L7 Rule", m.Flavor: "Flavor", m.FlavorProfile: "Flavor Profile",
    m.AvailabilityZone: "Availability Zone",
    m.AvailabilityZoneProfile: "Availability Zone Profile",
    m.Network: "Network", m.Subnet: "Subnet",
}


def get_or_404(db: Session, model: type[Row], key: str, shown_as: str | None = None) -> Row:
    """Row ``key`` of ``model`` (an admin record), else NotFound (404, "<Name> <key>
    not found." with ``shown_as`` or the model's name)."""
    obj = db.get(model, key)
    if obj is None:
        raise exc.NotFound(resource=shown_as or RESOURCE_NAMES[model], id=key)
    return obj


def get_visible(db: Session, ctx: RequestContext, model: type[Row], obj_id: str,
                options: Sequence[ORMOption] = (), statement: Select[Any] | None = None,
                **parent: str) -> Row:
    """Object ``obj_id`` of a load balancer's graph, else NotFound (404).

    Found means: it exists, is not DELETED, and its attributes named in
    ``parent`` have the values given (a member of the pool in the path:
    ``pool_id=pool.id``). Whose it is does not matter here: as in Octavia,
    the handler's policy check on the object's project follows, and another
    project's existing object is a 403, not a 404. ``options``: loader
    options for the query (what the handler reads of it, loaded with it);
    ``statement``: instead, a select of ``model`` by an ``id`` bind parameter,
    with its options, made once (SQLAlchemy keeps its cache key on it: the
    options are not walked again on every request; issue 12).
    """
    obj = db.get(model, obj_id, options=options) if statement is None \
        else db.scalars(statement, {"id": obj_id}).unique().one_or_none()
    row: Any = obj
    if (obj is None or row.provisioning_status == c.DELETED
            or any(getattr(row, k) != v for k, v in parent.items())):
        raise exc.NotFound(resource=RESOURCE_NAMES[model], id=obj_id)
    return obj


def caller(ctx: RequestContext) -> Caller:
    """``ctx`` as the network driver sees it: its project, and whether it is an admin."""
    return Caller(project_id=ctx.project_id, is_admin=ctx.is_lb_admin)


def used_by(db: Session, column: InstrumentedAttribute[Any], value: Any) -> bool:
    """True if a row has ``value`` in ``column`` (``m.Port.network_id``, ...)."""
    return db.scalar(select(column).where(column == value).limit(1)) is not None


# -- checks ----------------------------------------------------------------------

def check_provider(state: ApiState, lb: m.LoadBalancer) -> None:
    """Ask ``lb``'s provider whether it can realise ``lb`` as now in the session.

    Raises ProviderNotFound (501) if no driver is loaded for it (it need not
    be enabled still: it serves load balancers made while it was), and the
    errors of :func:`call_provider` with the provider's reason.
    """
    driver = _driver_of(state, lb)
    session = object_session(lb)
    subnet = state.network.vip_subnet(session, lb.vip_subnet_id) \
        if session and lb.vip_subnet_id else None
    call_provider(lb.provider, driver.validate, graph.build_spec(lb, subnet, lb.amphorae))


def check_members(state: ApiState, pool: m.Pool, members: Sequence[m.Member]) -> None:
    """Ask ``pool``'s provider whether it can realise a change of ``members`` (new or
    updated members of ``pool``), as now in the session.

    The provider sees only what a member change can make unrealisable
    (:func:`lbaas.worker.graph.member_change_spec`, built from what the
    handler loaded: no query), through ``validate_members``; the rest of the
    load balancer was accepted before and a member does not change it
    (issue 12: checking the whole load balancer was a quarter of a member
    add's API time). Raises as :func:`check_provider`.
    """
    lb = pool.load_balancer
    call_provider(lb.provider, _driver_of(state, lb).validate_members,
                  graph.member_change_spec(pool, members))


def _driver_of(state: ApiState, lb: m.LoadBalancer) -> ProviderDriver:
    """``lb``'s provider driver; ProviderNotFound (501) if none is loaded."""
    driver = state.drivers.get(driver_name(lb.provider))
    if driver is None:
        raise exc.ProviderNotFound(prov=lb.provider)
    return driver


QUOTA_MODELS: dict[str, type[m.Base]] = {
    "loadbalancer": m.LoadBalancer, "listener": m.Listener, "pool": m.Pool,
    "member": m.Member, "healthmonitor": m.HealthMonitor, "l7policy": m.L7Policy,
    "l7rule": m.L7Rule,
}


def check_quota(session: Session, state: ApiState, lb: m.LoadBalancer, resource: str,
                adding: int = 1) -> None:
    """Raise QuotaExceeded (403) if ``lb``'s project may not add ``adding`` ``resource``s.

    ``lb`` is the load balancer the new objects belong to (a new one for
    ``loadbalancer``): quotas are counted per project, and an object's project
    is its load balancer's. ``resource`` is a quota name: loadbalancer,
    listener, pool, member, healthmonitor, l7policy, l7rule. Counts objects
    not being deleted (Octavia's ``check_quota_met``). Exact under concurrency:
    the project's quota lock (:func:`lbaas.db.locks.lock_project_quota`) is
    held from this count to the transaction's end.
    """
    project_id = lb.project_id
    if project_id is not None:
        locks.lock_project_quota(session, project_id)
    quota = session.get(m.Quota, project_id) if project_id is not None else None
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
        raise exc.QuotaExceeded(resource=RESOURCE_NAMES[model])


def refuse_nulls(changes: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Raise InvalidOption (400, "None is not a valid option for <name>") if an
    update sets one of ``names`` to null (Octavia's flavor/zone profile PUTs).
    """
    for name in names:
        if name in changes and changes[name] is None:
            raise exc.InvalidOption(value=None, option=name)


# -- changes -----------------------------------------------------------------------

def apply_changes(obj: Any, changes: Mapping[str, Any],
                  keep_on_null: tuple[str, ...] = ("admin_state_up",)) -> None:
    """Set the fields of an update on ``obj``.

    ``tags`` replace the object's tags; a null for a name in ``keep_on_null``
    leaves that field as it is (Octavia ignores ``admin_state_up: null``).
    """
    for key, value in changes.items():
        if key == "tags":
            obj.tags = list(value or [])
        elif value is not None or key not in keep_on_null:
            setattr(obj, key, value)


@contextmanager
def conflicts_as(db: Session, error: exc.APIError) -> Iterator[None]:
    """Inside, an IntegrityError on flush or commit rolls back and raises ``error``.

    The uniqueness and in-use checks run before the write; another request
    that wrote the same key meanwhile (and committed first) makes the
    database refuse ours: a 409 (``error``), not a 500.
    """
    try:
        yield
    except IntegrityError:
        db.rollback()
        raise error from None


def delete_unused(db: Session, obj: Any, in_use: bool, error: exc.APIError) -> Response:
    """Delete ``obj`` and commit (204), unless it is in use: then raise ``error``
    (a 409), also when a row starts using it before the commit.
    """
    if in_use:
        raise error
    with conflicts_as(db, error):
        db.delete(obj)
        db.commit()
    return no_content()


# -- responses -----------------------------------------------------------------------

def respond(key: str, body: dict[str, Any], status: int = 200,
            fields: list[str] | None = None) -> JSONResponse:
    """``{key: body}`` with ``fields=`` applied."""
    return JSONBody(status_code=status, content={key: select_fields(body, fields)})


def no_content() -> Response:
    """The 204 of a delete."""
    return Response(status_code=204)


# -- providers ---------------------------------------------------------------------

def driver_name(provider: str) -> str:
    """The driver serving ``provider`` (Octavia's ``amphora`` is served by ``haproxy``)."""
    return c.PROVIDER_ALIASES.get(provider, provider)


def provider_driver(state: ApiState, provider: str) -> ProviderDriver:
    """The driver of the enabled provider ``provider`` (``amphora`` means haproxy).

    Raises ProviderNotEnabled (400) if ``provider`` is not among the enabled
    providers, ProviderNotFound (501) if it is enabled but no driver is
    loaded for it (Octavia's ``driver_factory.get_driver``).
    """
    if provider not in state.settings.enabled_providers:
        raise exc.ProviderNotEnabled(prov=provider)
    driver = state.drivers.get(driver_name(provider))
    if driver is None:
        raise exc.ProviderNotFound(prov=provider)
    return driver


def call_provider(provider: str, method: Callable[..., T], *args: Any) -> T:
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


# The 501 of provider errors (ProviderNotFound, ProviderUnsupportedOption,
# ProviderNotImplemented), for the OpenAPI document of the routes that ask a provider.
PROVIDER_ERRORS: dict[int | str, dict[str, Any]] = {
    501: {"description": "The provider cannot do what was asked",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Fault"}}}},
}
