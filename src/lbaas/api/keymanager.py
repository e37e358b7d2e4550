"""What the Barbican-shaped store API (``/v1``) shares: errors, references, paging, access.

lbaas's own certificate store answers on the API port the part of
Barbican's key-manager API v1 that python-barbicanclient and ``openstack
secret ...`` use for certificates: ``/v1/secrets`` (:mod:`lbaas.api.routes.secret`)
and ``/v1/containers`` (:mod:`lbaas.api.routes.container`), per project,
with Barbican's shapes (openstack/barbican ``api/controllers``), references
(``<base>/v1/secrets/<uuid>``), paging (``offset``/``limit``, ``total``,
``next``/``previous``) and error body ``{"code": ..., "title": ...,
"description": ...}``. Version discovery: ``GET /v1``, and ``GET /`` when the
request asks for a ``key-manager`` microversion (``OpenStack-API-Version:
key-manager 1.1``, as python-barbicanclient does); ``/`` otherwise stays
Octavia's version list.

Access: the caller's project owns what it creates and sees nothing else (as
in Barbican without ACLs: 404 for another project's objects). Read-only
callers (only ``reader``, ``observer``, ``audit``, ``load-balancer_observer``
roles) may list and read metadata, not payloads, and may not write (403).
The store is served only with ``[certificates] cert_manager =
local_cert_manager``; with Barbican, ``/v1`` answers 404.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from lbaas.api.policy import RequestContext
from lbaas.certificates.store import SecretBox
from lbaas.common import exceptions as exc

if TYPE_CHECKING:  # deps imports auth, which imports errors, which imports this module
    from lbaas.api.deps import ApiState

PREFIX = "/v1"
MIN_VERSION, MAX_VERSION = "1.0", "1.1"
DEFAULT_LIMIT, MAX_LIMIT = 10, 100  # Barbican's default and max_limit_paging
READ_ONLY_ROLES = {"reader", "observer", "audit", "load-balancer_observer",
                   "load-balancer_global_observer"}


class KeyManagerFault(BaseModel):
    """Barbican's error body."""

    code: int
    title: str
    description: str


class KeyManagerError(exc.APIError):
    """An error of the ``/v1`` API; written in Barbican's body by :func:`fault`."""


class NotFoundError(KeyManagerError):
    code = 404
    message = "%(what)s not found."


class BadRequest(KeyManagerError):
    code = 400
    message = "%(detail)s"


class Forbidden(KeyManagerError):
    code = 403
    message = ("%(operation)s attempt not allowed - please review your user/project "
               "privileges")


class Conflict(KeyManagerError):
    code = 409
    message = "%(detail)s"


class NotAcceptable(KeyManagerError):
    code = 406
    message = "Wrong payload content-type"


class UnsupportedMediaType(KeyManagerError):
    code: ClassVar[int] = 415
    message = "%(detail)s"


class TooLarge(KeyManagerError):
    code = 413
    message = "Provided information too large to process"


def invalid(schema: str, reason: str, prop: str) -> BadRequest:
    """Barbican's InvalidObject: a field that does not fit the schema."""
    return BadRequest(detail=f"Provided object does not match schema '{schema}': {reason}. "
                             f"Invalid property: '{prop}'")


def fault(status: int, description: str) -> JSONResponse:
    """An error in Barbican's body."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return JSONResponse(status_code=status,
                        content={"code": status, "title": title, "description": description})


def is_keymanager_path(path: str) -> bool:
    """True for the paths of this API (whose errors take Barbican's body)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def box_of(state: ApiState) -> SecretBox:
    """The store's cipher; NotFoundError (404) when the store is not served."""
    if state.secret_box is None:
        raise NotFoundError(what="The resource")
    return state.secret_box


def base_url(request: Request, state: ApiState) -> str:
    """Where references point: ``[api_settings] api_base_uri`` or the request's own."""
    return (state.settings.api_base_uri or str(request.base_url)).rstrip("/")


def require_writer(ctx: RequestContext, operation: str) -> None:
    """Forbidden (403, Barbican's words) for read-only callers."""
    if not ctx.is_admin and set(ctx.roles) and set(ctx.roles) <= READ_ONLY_ROLES:
        raise Forbidden(operation=operation)


def page_params(request: Request) -> tuple[int, int]:
    """``(offset, limit)`` from the query; bad values fall back to the defaults, as
    Barbican's ``clean_paging_values`` does."""
    try:
        offset = max(0, int(request.query_params.get("offset", 0)))
    except ValueError:
        offset = 0
    try:
        limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = DEFAULT_LIMIT
    return offset, max(1, min(limit, MAX_LIMIT))


def list_page(request: Request, state: ApiState, db: Session, stmt: Select[Any],
              order: tuple[Any, ...], collection: str, filters: tuple[str, ...],
              body: Callable[[str, Any], dict[str, Any]]) -> JSONResponse:
    """One Barbican page of ``stmt`` (a select of the caller's rows): the query's
    ``filters`` (equality on a column of that name), ``offset``/``limit``, oldest first;
    ``{collection: [body(base, row)...], "total": n, "next"?, "previous"?}``."""
    offset, limit = page_params(request)
    query = dict(request.query_params)
    entity = stmt.column_descriptions[0]["entity"]
    for name in filters:
        if query.get(name):
            stmt = stmt.where(getattr(entity, name) == query[name])
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.scalars(stmt.order_by(*order).offset(offset).limit(limit)).all()
    base = base_url(request, state)
    out: dict[str, Any] = {collection: [body(base, r) for r in rows], "total": total}
    if rows:
        out.update(page_links(base, collection, offset, limit, total, query))
    return JSONResponse(out)


def page_links(base: str, collection: str, offset: int, limit: int, total: int,
               query: dict[str, str]) -> dict[str, Any]:
    """Barbican's ``previous``/``next`` hrefs of a page (``add_nav_hrefs``)."""
    extra = "".join(f"&{k}={v}" for k, v in query.items() if k not in ("offset", "limit"))
    out: dict[str, Any] = {}
    if offset > 0:
        out["previous"] = (f"{base}{PREFIX}/{collection}?limit={limit}"
                           f"&offset={max(0, offset - limit)}{extra}")
    if total > offset + limit:
        out["next"] = f"{base}{PREFIX}/{collection}?limit={limit}&offset={offset + limit}{extra}"
    return out


def version_info(base: str, microversions: bool = True) -> dict[str, Any]:
    """Barbican's description of API v1 (``V1Controller.get_version_info``)."""
    info: dict[str, Any] = {
        "id": "v1", "status": "CURRENT", "min_version": MIN_VERSION,
        "max_version": MAX_VERSION,
        "links": [{"rel": "self", "href": f"{base}{PREFIX}/"},
                  {"rel": "describedby", "type": "text/html",
                   "href": "https://docs.openstack.org/"}],
    }
    if not microversions:
        del info["min_version"], info["max_version"]
        info["status"] = "stable"
        info["media-types"] = [{"base": "application/json",
                                "type": "application/vnd.openstack.key-manager-v1+json"}]
    return info


def wants_microversions(request: Request) -> bool:
    """True if the request asks for a key-manager microversion above 1.0."""
    header = request.headers.get("openstack-api-version", "")
    parts = header.split()
    return len(parts) == 2 and parts[0] == "key-manager" and parts[1] != "1.0"


def asks_for_key_manager(request: Request) -> bool:
    """True if a request to ``/`` is Barbican version discovery (a key-manager
    ``OpenStack-API-Version`` header)."""
    return request.headers.get("openstack-api-version", "").startswith("key-manager")


def versions_document(request: Request, state: ApiState) -> JSONResponse:
    """Barbican's answer to ``GET /`` (``VersionsController.on_get``)."""
    base = base_url(request, state)
    if wants_microversions(request):
        return JSONResponse({"versions": [version_info(base)]}, status_code=300)
    return JSONResponse({"versions": {"values": [version_info(base, microversions=False)]}},
                        status_code=300)
