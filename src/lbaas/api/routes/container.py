"""Containers of lbaas's own store: /v1/containers (Barbican's ``ContainersController``).

A container names secrets of its project: a ``certificate`` container holds
``certificate`` (required), ``private_key``, ``private_key_passphrase`` and
``intermediates`` — Octavia's second form of a TLS certificate, beside a
PKCS#12 secret. Containers cannot be changed once made (as in Barbican);
one that a listener or pool uses cannot be deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from lbaas.api import deps
from lbaas.api import keymanager as km
from lbaas.api.deps import Ctx, Db, State
from lbaas.api.schemas import secret as s
from lbaas.certificates import store
from lbaas.db import models as m

router = APIRouter(tags=["Key manager (containers)"])

SCHEMA = "Container"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def container_body(base: str, row: m.SecretContainer,
                   consumers: list[store.Consumer]) -> dict[str, Any]:
    """A container in Barbican's shape; consumers as ``{"name", "URL"}``."""
    return {
        "container_ref": store.href(base, store.CONTAINERS, row.id), "name": row.name,
        "type": row.type, "status": row.status, "created": _iso(row.created_at),
        "updated": _iso(row.updated_at), "creator_id": row.creator_id,
        "secret_refs": [{"name": cs.name,
                         "secret_ref": store.href(base, store.SECRETS, cs.secret_id)}
                        for cs in row.secret_refs],
        "consumers": [{"name": "lbaas",
                       "URL": f"{base}/v2/lbaas/{c.resource_type}s/{c.resource_id}"}
                      for c in consumers],
    }


def _check_names(body: s.ContainerCreate) -> None:
    """Barbican's ContainerValidator: unique names and secrets; the names a type allows."""
    names = [r.name for r in body.secret_refs]
    if len(set(names)) != len(names):
        raise km.invalid(SCHEMA, "Duplicate reference names are not allowed", "secret_refs")
    ids = [store.parse_ref(r.secret_ref) for r in body.secret_refs]
    if len({i.id if i else r.secret_ref for i, r in zip(ids, body.secret_refs, strict=True)}) \
            != len(ids):
        raise km.invalid(SCHEMA, "Duplicate secret ids are not allowed", "secret_refs")
    if body.type == "certificate":
        if any(n not in s.CERTIFICATE_PARTS for n in names):
            raise km.invalid(SCHEMA, "only 'private_key', 'certificate' , "
                                     "'private_key_passphrase',  or 'intermediates' reference "
                                     "names are allowed for Certificate type", "secret_refs")
        if "certificate" not in names:
            raise km.invalid(SCHEMA, "The minimum required reference name is 'certificate' "
                                     "for Certificate type", "secret_refs")
    elif body.type == "rsa":
        if any(n not in s.RSA_PARTS for n in names):
            raise km.invalid(SCHEMA, "only 'private_key', 'public_key' and "
                                     "'private_key_passphrase' reference names are allowed "
                                     "for RSA type", "secret_refs")
        if not {"public_key", "private_key"} <= set(names):
            raise km.invalid(SCHEMA, "The minimum required reference names are 'public_key' "
                                     "and'private_key' for RSA type", "secret_refs")


def _owned(db: Db, ctx: Ctx, container_id: str) -> m.SecretContainer:
    parsed = store.parse_ref(container_id)
    row = db.get(m.SecretContainer, parsed.id) \
        if parsed is not None and parsed.kind is None else None
    if row is None or row.project_id != ctx.project_id:
        raise km.NotFoundError(what="Secrets container")
    return row


@router.post("/containers", status_code=201, response_model=s.ContainerRefResponse)
def create_container(body: s.ContainerCreate, request: Request, ctx: Ctx, db: Db,
                     state: State) -> JSONResponse:
    """Make a container of the caller's secrets."""
    km.box_of(state)
    km.require_writer(ctx, "Container creation")
    if body.type not in s.CONTAINER_TYPES:
        raise km.invalid(SCHEMA, f"'{body.type}' is not one of {list(s.CONTAINER_TYPES)}",
                         "type")
    _check_names(body)
    row = m.SecretContainer(id=m.new_id(), project_id=ctx.project_id,
                            name=body.name.strip() if body.name else None, type=body.type)
    for position, item in enumerate(body.secret_refs):
        secret = store.find_secret(db, item.secret_ref)
        if secret is None or secret.project_id != ctx.project_id:
            raise km.NotFoundError(what=f"Secret provided for '{item.name}' doesn't exist. "
                                        "Secret")
        row.secret_refs.append(m.ContainerSecret(secret_id=secret.id, name=item.name,
                                                 position=position))
    db.add(row)
    with deps.conflicts_as(db, km.NotFoundError(what="Secret")):
        db.commit()
    ref = store.href(km.base_url(request, state), store.CONTAINERS, row.id)
    return JSONResponse({"container_ref": ref}, status_code=201, headers={"Location": ref})


@router.get("/containers", response_model=s.ContainerPage)
def list_containers(request: Request, ctx: Ctx, db: Db, state: State) -> JSONResponse:
    """The caller's project's containers, oldest first (``offset``, ``limit``, ``name``,
    ``type`` filters)."""
    km.box_of(state)
    return km.list_page(
        request, state, db,
        select(m.SecretContainer).where(m.SecretContainer.project_id == ctx.project_id),
        (m.SecretContainer.created_at, m.SecretContainer.id), "containers", ("name", "type"),
        lambda base, r: container_body(base, r, store.consumers(db, r.id)))


@router.get("/containers/{container_id}", response_model=s.ContainerResponse)
def show_container(container_id: str, request: Request, ctx: Ctx, db: Db,
                   state: State) -> JSONResponse:
    """One container."""
    km.box_of(state)
    row = _owned(db, ctx, container_id)
    return JSONResponse(container_body(km.base_url(request, state), row,
                                       store.consumers(db, row.id)))


@router.delete("/containers/{container_id}", status_code=204, response_class=Response)
def delete_container(container_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a container nothing uses (its secrets stay)."""
    km.box_of(state)
    row = _owned(db, ctx, container_id)
    km.require_writer(ctx, "Container deletion")
    if store.consumers(db, row.id):
        raise km.BadRequest(detail="Container deletion issue seen - Container cannot be "
                                   "deleted as it has consumers.")
    db.delete(row)
    db.commit()
    return Response(status_code=204)
