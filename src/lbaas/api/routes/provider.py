"""Providers: /v2/lbaas/providers (api-ref "Providers").

The providers are the enabled ones from ``[api_settings]
enabled_provider_drivers`` (name and description); their capabilities are
what each driver declares (``flavor_capabilities()``,
``availability_zone_capabilities()``). ``amphora`` is an alias of
``haproxy`` and answers with its driver.

These lists are not paged, as in Octavia: ``fields=`` selects attributes,
``name=`` and ``description=`` filter on exact values, other parameters are
ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lbaas.api import deps
from lbaas.api.deps import Ctx, State
from lbaas.api.query import select_fields
from lbaas.api.schemas import provider as s
from lbaas.drivers.base import ProviderDriver

router = APIRouter(tags=["Providers"])


def _name_descriptions(request: Request, key: str, items: dict[str, str]) -> JSONResponse:
    """``{key: [{"name", "description"}, ...]}`` filtered and narrowed by the query."""
    params = request.query_params
    rows = [{"name": name, "description": description} for name, description in items.items()]
    for attr in ("name", "description"):
        wanted = params.getlist(attr)
        if wanted:
            rows = [row for row in rows if row[attr] in wanted]
    fields = deps.get_fields(request)
    return JSONResponse({key: [select_fields(row, fields) for row in rows]})


@router.get("/providers", response_model=s.ProvidersRoot)
def list_providers(request: Request, ctx: Ctx, state: State) -> JSONResponse:
    """List the enabled providers and their descriptions."""
    ctx.authorize("provider", "get_all")
    return _name_descriptions(request, "providers", dict(state.settings.enabled_providers))


def _capabilities(request: Request, state: deps.ApiState, provider: str, key: str,
                  method: Callable[[ProviderDriver], Callable[[], dict[str, str]]],
                  ) -> JSONResponse:
    driver = deps.provider_driver(state, provider)
    items = deps.call_provider(provider, method(driver))
    return _name_descriptions(request, key, dict(items))


@router.get("/providers/{provider}/flavor_capabilities",
            response_model=s.FlavorCapabilitiesRoot, responses=deps.PROVIDER_ERRORS)
def list_flavor_capabilities(provider: str, request: Request, ctx: Ctx,
                             state: State) -> JSONResponse:
    """The keys a flavor profile of ``provider`` may set (admin).

    ProviderNotEnabled (400) for a provider that is not enabled,
    ProviderNotFound (501) for one without a driver.
    """
    ctx.authorize("provider-flavor", "get_all")
    return _capabilities(request, state, provider, "flavor_capabilities",
                         lambda d: d.flavor_capabilities)


@router.get("/providers/{provider}/availability_zone_capabilities",
            response_model=s.AvailabilityZoneCapabilitiesRoot, responses=deps.PROVIDER_ERRORS)
def list_availability_zone_capabilities(provider: str, request: Request, ctx: Ctx,
                                        state: State) -> JSONResponse:
    """The keys an availability zone profile of ``provider`` may set (admin).

    ProviderNotEnabled (400) for a provider that is not enabled,
    ProviderNotFound (501) for one without a driver.
    """
    ctx.authorize("provider-availability-zone", "get_all")
    return _capabilities(request, state, provider, "availability_zone_capabilities",
                         lambda d: d.availability_zone_capabilities)
