"""Security groups: /v2.0/security-groups, after Neutron's networking API v2.0.

lbaas enforces no security groups (VIP security groups are 501), so there
are none: the list is always empty and any one group is a 404. It answers
so that tools written for a Neutron find what they look for: tempest's
credential cleanup lists each test project's ``default`` group to delete it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lbaas.api.deps import Ctx
from lbaas.common import exceptions as exc

router = APIRouter(tags=["Networks"])


@router.get("/security-groups")
def list_security_groups(ctx: Ctx) -> JSONResponse:
    """List security groups: none, whatever the filters (``project_id``, ``name``)."""
    ctx.authorize("network", "get_all")
    return JSONResponse({"security_groups": []})


@router.get("/security-groups/{security_group_id}")
def show_security_group(security_group_id: str, ctx: Ctx) -> JSONResponse:
    """Show a security group: always NotFound (404)."""
    raise exc.NotFound(resource="Security Group", id=security_group_id)
