"""Shapes of the Barbican-shaped store (``/v1/secrets``, ``/v1/containers``).

Field names, types and limits are Barbican's (``common/validators.py``:
``NewSecretValidator``, ``ContainerValidator``). Unknown attributes are
ignored, as Barbican's JSON schemas allow them. Wrong types become
Barbican's 400 ("Provided object does not match schema ...").
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lbaas.common import validate

SECRET_TYPES = ("symmetric", "public", "private", "passphrase", "certificate", "opaque")
CONTAINER_TYPES = ("generic", "rsa", "certificate")
# Names a certificate container may hold (the first is required).
CERTIFICATE_PARTS = ("certificate", "private_key", "private_key_passphrase", "intermediates")
RSA_PARTS = ("public_key", "private_key", "private_key_passphrase")
MAX_PAYLOAD = 20000  # bytes of the request's payload text (Barbican's default limit)


Text = Annotated[str, Field(max_length=255)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text.
        if isinstance(value, str):
            validate.no_nul(value)
        return value


class SecretCreate(_Body):
    """POST /v1/secrets (the payload may come later through PUT)."""

    name: Text | None = None
    algorithm: Text | None = None
    mode: Text | None = None
    bit_length: int | None = Field(default=None, ge=1, le=32767)
    expiration: Text | None = Field(default=None, description="ISO 8601, in the future.")
    payload: str | None = None
    secret_type: str | None = Field(default=None, json_schema_extra={"enum": list(SECRET_TYPES)})
    payload_content_type: Text | None = Field(
        default=None, description="text/plain, application/octet-stream or application/pkcs8.")
    payload_content_encoding: str | None = Field(
        default=None, json_schema_extra={"enum": ["base64"]},
        description="base64 for binary payloads.")


class SecretRefItem(_Body):
    """One named secret of a container."""

    name: Text | None = None
    secret_ref: str = Field(min_length=1)


class ContainerCreate(_Body):
    """POST /v1/containers."""

    name: Text | None = None
    type: str = Field(json_schema_extra={"enum": list(CONTAINER_TYPES)})
    secret_refs: list[SecretRefItem] = []


class SecretRefResponse(BaseModel):
    secret_ref: str


class ContainerRefResponse(BaseModel):
    container_ref: str


class SecretResponse(BaseModel):
    """A secret's metadata (never its payload)."""

    secret_ref: str
    name: str | None
    secret_type: str
    status: str
    created: str
    updated: str
    expiration: str | None
    algorithm: str | None
    bit_length: int | None
    mode: str | None
    creator_id: str | None
    content_types: dict[str, str] | None = None
    consumers: list[dict[str, str]]


class SecretPage(BaseModel):
    secrets: list[SecretResponse]
    total: int
    next: str | None = None
    previous: str | None = None


class ContainerResponse(BaseModel):
    container_ref: str
    name: str | None
    type: str
    status: str
    created: str
    updated: str
    creator_id: str | None
    secret_refs: list[dict[str, str | None]]
    consumers: list[dict[str, str]]


class ContainerPage(BaseModel):
    containers: list[ContainerResponse]
    total: int
    next: str | None = None
    previous: str | None = None
