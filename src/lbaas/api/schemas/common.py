"""Field types and base classes shared by every resource's schemas.

Request models are strict and forbid unknown attributes (Octavia's wsme types
refuse them too); a violation becomes Octavia's 400 naming the field.
Response models read ORM rows (``from_attributes``) and print timestamps the
way Octavia does (``2017-02-28T00:41:44``).
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError("Value should be UUID format") from None


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("Value should be IPv4 or IPv6 format") from None


def _cidr(value: str) -> str:
    try:
        return ipaddress.ip_network(value, strict=False).with_prefixlen
    except ValueError:
        raise ValueError("Value should be IPv4 or IPv6 CIDR format") from None


def _timestamp(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value is not None else None


UUIDStr = Annotated[str, AfterValidator(_uuid), Field(json_schema_extra={"format": "uuid"})]
IPAddressStr = Annotated[str, AfterValidator(_ip_address),
                         Field(json_schema_extra={"format": "ip-address"})]
CidrStr = Annotated[str, AfterValidator(_cidr)]
Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=255)]
ProjectId = Annotated[str, Field(max_length=36)]
Tag = Annotated[str, Field(max_length=255)]
Port = Annotated[int, Field(ge=1, le=65535)]

# Response-side: Octavia prints a missing name or description as "".
NameOut = Annotated[str, BeforeValidator(lambda v: v or "")]
Timestamp = Annotated[datetime | None, PlainSerializer(_timestamp, return_type=str | None)]


class RequestModel(BaseModel):
    """Base of request bodies: strict types, unknown attributes refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    """Base of response bodies, read from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class IdOnly(ResponseModel):
    """A reference to another object: ``{"id": ...}``."""

    id: str


class PageLink(BaseModel):
    """A pagination link: ``{"href": ..., "rel": "next"|"previous"}``."""

    href: str
    rel: str


def id_refs(objs: Any) -> list[dict[str, str]]:
    """``[{"id": ...}, ...]`` for a collection of rows."""
    return [{"id": o.id} for o in objs]
