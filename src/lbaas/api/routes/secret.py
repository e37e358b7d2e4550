"""Secrets of lbaas's own store: /v1/secrets (Barbican's ``SecretsController``).

A secret holds one payload, stored encrypted (:mod:`lbaas.certificates.store`):
given in the POST (``payload`` with ``payload_content_type`` text/plain, or
application/octet-stream / application/pkcs8 with
``payload_content_encoding: base64``), or later by one PUT of the raw bytes
(``Content-Type`` text/plain or application/octet-stream, optional
``Content-Encoding: base64``). Metadata never shows the payload;
``GET /v1/secrets/{id}/payload`` returns it to the owning project (Accept:
the stored content type). A secret that a listener, pool or container uses
cannot be deleted (Barbican's "Secret cannot be deleted as it has consumers").
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
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

router = APIRouter(tags=["Key manager (secrets)"])

# Barbican's mime types: what a payload may be, and the encodings of each.
CONTENT_TYPES = {"text/plain": "text/plain", "text/plain;charset=utf-8": "text/plain",
                 "text/plain; charset=utf-8": "text/plain",
                 "application/octet-stream": "application/octet-stream",
                 "application/pkcs8": "application/pkcs8"}
ENCODINGS: dict[str, tuple[str | None, ...]] = {
    "text/plain": (None,), "application/octet-stream": ("base64", "binary"),
    "application/pkcs8": ("base64", "binary")}


def normalize(content_type: str) -> str | None:
    """Barbican's internal form of a payload content type, or None if unsupported."""
    return CONTENT_TYPES.get(content_type.strip().lower())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def secret_body(base: str, row: m.Secret, consumers: list[store.Consumer]) -> dict[str, Any]:
    """A secret's metadata in Barbican's shape."""
    return {
        "secret_ref": store.href(base, store.SECRETS, row.id), "name": row.name,
        "secret_type": row.secret_type, "status": row.status,
        "created": _iso(row.created_at), "updated": _iso(row.updated_at),
        "expiration": _iso(row.expiration), "algorithm": row.algorithm,
        "bit_length": row.bit_length, "mode": row.mode, "creator_id": row.creator_id,
        "content_types": {"default": row.content_type} if row.content_type else None,
        "consumers": [{"service": "load-balancer", "resource_type": c.resource_type,
                       "resource_id": c.resource_id} for c in consumers],
    }


def _owned(db: Db, ctx: Ctx, secret_id: str) -> m.Secret:
    parsed = store.parse_ref(secret_id)
    row = db.get(m.Secret, parsed.id) if parsed is not None and parsed.kind is None else None
    if row is None or row.project_id != ctx.project_id:
        raise km.NotFoundError(what="Secret")
    return row


def _expiration(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise km.invalid("Secret", "Invalid date for 'expiration'", "expiration") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    if when <= datetime.now(UTC).replace(tzinfo=None):
        raise km.invalid("Secret", "'expiration' is before current time", "expiration")
    return when


def decode_payload(payload: str, content_type: str | None, encoding: str | None) -> tuple[
        bytes, str]:
    """The bytes and normalised content type of a POSTed payload (Barbican's rules).

    Raises BadRequest (400) in Barbican's words.
    """
    if content_type is None:
        raise km.invalid("Secret", "If 'payload' is supplied, 'payload_content_type' must also "
                                   "be supplied", "payload_content_type")
    normal = normalize(content_type)
    if normal is None:
        raise km.invalid("Secret", "payload_content_type is not one of "
                                   f"{sorted(CONTENT_TYPES)}", "payload_content_type")
    if encoding not in ENCODINGS[normal]:
        raise km.invalid("Secret", "payload_content_encoding is not one of "
                                   f"{list(ENCODINGS[normal])}", "payload_content_encoding")
    payload = payload.strip()
    if not payload:
        raise km.invalid("Secret", "If 'payload' specified, must be non empty", "payload")
    if encoding == "base64":
        try:
            return base64.b64decode(payload, validate=True), normal
        except (binascii.Error, ValueError):
            raise km.invalid("Secret", "Invalid payload for payload_content_encoding",
                             "payload") from None
    return payload.encode(), normal


@router.post("/secrets", status_code=201, response_model=s.SecretRefResponse)
def create_secret(body: s.SecretCreate, request: Request, ctx: Ctx, db: Db,
                  state: State) -> JSONResponse:
    """Store a secret (and its payload, if given) for the caller's project."""
    box = km.box_of(state)
    km.require_writer(ctx, "Secret creation")
    if body.payload is not None and len(body.payload) > s.MAX_PAYLOAD:
        raise km.TooLarge()
    if body.secret_type is not None and body.secret_type not in s.SECRET_TYPES:
        raise km.invalid("Secret", f"'{body.secret_type}' is not one of "
                                   f"{list(s.SECRET_TYPES)}", "secret_type")
    row = m.Secret(id=m.new_id(), project_id=ctx.project_id,
                   name=body.name.strip() if body.name else None,
                   secret_type=body.secret_type or "opaque", algorithm=body.algorithm,
                   bit_length=body.bit_length, mode=body.mode,
                   expiration=_expiration(body.expiration))
    if body.payload is not None:
        data, row.content_type = decode_payload(body.payload, body.payload_content_type,
                                                body.payload_content_encoding)
        row.payload = box.seal(row.id, data)
    elif body.payload_content_type is not None:
        raise km.invalid("Secret", "payload must be provided when payload_content_type is "
                                   "specified", "payload")
    db.add(row)
    db.commit()
    ref = store.href(km.base_url(request, state), store.SECRETS, row.id)
    return JSONResponse({"secret_ref": ref}, status_code=201, headers={"Location": ref})


@router.get("/secrets", response_model=s.SecretPage)
def list_secrets(request: Request, ctx: Ctx, db: Db, state: State) -> JSONResponse:
    """The caller's project's secrets, oldest first (``offset``, ``limit``, ``name``,
    ``secret_type`` filters)."""
    km.box_of(state)
    return km.list_page(request, state, db,
                        select(m.Secret).where(m.Secret.project_id == ctx.project_id),
                        (m.Secret.created_at, m.Secret.id), "secrets", ("name", "secret_type"),
                        lambda base, r: secret_body(base, r, store.consumers(db, r.id)))


@router.get("/secrets/{secret_id}", response_model=s.SecretResponse)
def show_secret(secret_id: str, request: Request, ctx: Ctx, db: Db,
                state: State) -> Response:
    """A secret's metadata; with a non-JSON ``Accept``, its payload (Barbican's
    deprecated form of ``/payload``)."""
    km.box_of(state)
    row = _owned(db, ctx, secret_id)
    accept = request.headers.get("accept", "application/json")
    if accept and "json" not in accept and accept != "*/*":
        return _payload(row, ctx, state, accept)
    return JSONResponse(secret_body(km.base_url(request, state), row,
                                    store.consumers(db, row.id)))


@router.get("/secrets/{secret_id}/payload", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}, "text/plain": {}}}})
def secret_payload(secret_id: str, request: Request, ctx: Ctx, db: Db,
                   state: State) -> Response:
    """The payload, decrypted, for its owning project (``Accept``: its content type)."""
    km.box_of(state)
    row = _owned(db, ctx, secret_id)
    return _payload(row, ctx, state, request.headers.get("accept"))


def _payload(row: m.Secret, ctx: Ctx, state: State, accept: str | None) -> Response:
    km.require_writer(ctx, "Secret payload retrieval")
    if row.payload is None or row.content_type is None:
        raise km.NotFoundError(what="Not Found. Sorry but your secret has no payload. Secret")
    wanted = row.content_type if not accept or accept.strip() == "*/*" else normalize(accept)
    if wanted != row.content_type:
        raise km.NotAcceptable()
    try:
        data = km.box_of(state).open(row.id, row.payload)
    except store.StoreKeyError as e:
        raise km.Conflict(detail=f"Secret payload retrieval failure: {e}") from None
    return Response(content=data, media_type=row.content_type)


@router.put("/secrets/{secret_id}", status_code=204, response_class=Response,
            openapi_extra={"requestBody": {"content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "text/plain": {"schema": {"type": "string"}}}}})
async def put_payload(secret_id: str, request: Request, ctx: Ctx, db: Db,
                      state: State) -> Response:
    """Give a secret created without a payload its payload (once)."""
    box = km.box_of(state)
    row = _owned(db, ctx, secret_id)
    km.require_writer(ctx, "Secret update")
    content_type = normalize(request.headers.get("content-type") or "")
    if content_type not in ("text/plain", "application/octet-stream"):
        raise km.UnsupportedMediaType(detail=f"Content-Type of "
                                             f"'{request.headers.get('content-type')}' is not "
                                             "supported for PUT.")
    data = await request.body()
    if not data:
        raise km.BadRequest(detail="No data supplied to process.")
    if len(data) > s.MAX_PAYLOAD:
        raise km.TooLarge()
    if row.payload is not None:
        raise km.Conflict(detail="Secret already has data, cannot modify it.")
    if (request.headers.get("content-encoding") or "").lower() == "base64":
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise km.BadRequest(detail="Invalid payload for payload_content_encoding") \
                from None
    row.content_type = content_type
    row.payload = box.seal(row.id, data)
    db.commit()
    return Response(status_code=204)


@router.delete("/secrets/{secret_id}", status_code=204, response_class=Response)
def delete_secret(secret_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a secret nothing uses (400 "... has consumers" otherwise, as Barbican)."""
    km.box_of(state)
    row = _owned(db, ctx, secret_id)
    km.require_writer(ctx, "Secret deletion")
    if store.consumers(db, row.id):
        raise km.BadRequest(detail="Secret deletion issue seen - Secret cannot be deleted as "
                                   "it has consumers.")
    with deps.conflicts_as(db, km.Conflict(detail="Secret deletion issue seen - Secret cannot "
                                                  "be deleted as it has consumers.")):
        db.delete(row)
        db.commit()
    return Response(status_code=204)
