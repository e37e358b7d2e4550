"""lbaas's own certificate store: Barbican-shaped secrets and containers in the database.

Payloads are encrypted at rest with AES-256-GCM (an AEAD of ``cryptography``)
under a key kept in a file of mode 0600 (``[certificates] store_key_file``,
default ``<state_dir>/secrets.key``), created on first start. Each payload is
stored as ``version byte || 96-bit nonce || ciphertext+tag`` with the secret's
id as associated data, so a payload copied onto another row does not decrypt.
Every lbaas process sharing one database needs the same key file.

References are Barbican's URLs, ``<base>/v1/secrets/<uuid>`` and
``<base>/v1/containers/<uuid>``; :func:`parse_ref` accepts any base (the
store is this service whatever name the client used) and a bare UUID.

A secret or container is *consumed* while a listener or pool (not deleted)
names it, or, for a secret, while a container holds it: it cannot be
deleted then (Barbican refuses to delete secrets with consumers).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from lbaas.common import constants as c
from lbaas.db import models as m

LOG = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_REF = re.compile(rf"^(?:.*/)?v1/(secrets|containers)/({_UUID})/?$")
_BARE = re.compile(rf"^{_UUID}$")

SECRETS = "secrets"
CONTAINERS = "containers"


class StoreKeyError(Exception):
    """The store's key file is unusable (unreadable, wrong size)."""


class SecretBox:
    """AES-256-GCM under the key in ``key_file`` (created 0600 if missing)."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._aead = AESGCM(self._load_or_create(key_file))

    @staticmethod
    def _load_or_create(path: Path) -> bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                LOG.warning("certificate store key %s had mode %o; set to 600", path, mode)
                path.chmod(0o600)
            try:
                key = base64.b64decode(path.read_bytes().strip(), validate=True)
            except ValueError as e:
                raise StoreKeyError(f"{path}: not a base64 key ({e})") from None
            if len(key) == KEY_BYTES:
                return key
            raise StoreKeyError(f"{path}: the key must be {KEY_BYTES} bytes, not {len(key)}") \
                from None
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(key) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        LOG.info("created the certificate store key %s", path)
        return key

    def seal(self, secret_id: str, plaintext: bytes) -> bytes:
        """``plaintext`` encrypted for the row of ``secret_id``."""
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT_VERSION + nonce + self._aead.encrypt(nonce, plaintext,
                                                           secret_id.encode())

    def open(self, secret_id: str, sealed: bytes) -> bytes:
        """The plaintext of ``sealed``; raises StoreKeyError if it does not decrypt
        (another key, or another row's payload)."""
        if not sealed.startswith(FORMAT_VERSION):
            raise StoreKeyError("unknown payload format")
        nonce = sealed[1:1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + NONCE_BYTES:], secret_id.encode())
        except InvalidTag:
            raise StoreKeyError(f"the payload of secret {secret_id} does not decrypt with "
                                f"this store key") from None


@dataclass(frozen=True)
class Ref:
    """A parsed reference: ``kind`` is ``secrets`` or ``containers`` (None for a bare
    UUID, which may be either)."""

    kind: str | None
    id: str


def parse_ref(ref: str) -> Ref | None:
    """The kind and id a reference names, or None if it is no reference of this store."""
    ref = ref.strip()
    match = _REF.match(ref)
    if match:
        return Ref(kind=match.group(1), id=match.group(2).lower())
    if _BARE.match(ref):
        return Ref(kind=None, id=ref.lower())
    return None


def href(base: str, kind: str, obj_id: str) -> str:
    """The reference of an object: ``<base>/v1/<kind>/<id>``."""
    return f"{base.rstrip('/')}/v1/{kind}/{obj_id}"


def find_secret(session: Session, ref: str) -> m.Secret | None:
    """The secret ``ref`` names (any project), or None."""
    parsed = parse_ref(ref)
    if parsed is None or parsed.kind == CONTAINERS:
        return None
    return session.get(m.Secret, parsed.id)


def find_container(session: Session, ref: str) -> m.SecretContainer | None:
    """The container ``ref`` names (any project), or None."""
    parsed = parse_ref(ref)
    if parsed is None or parsed.kind == SECRETS:
        return None
    return session.get(m.SecretContainer, parsed.id)


# Columns of listeners and pools that hold references.
_REF_COLUMNS = (m.Listener.default_tls_container_ref, m.Listener.client_ca_tls_container_ref,
                m.Listener.client_crl_container_ref)
_POOL_REF_COLUMNS = (m.Pool.tls_container_ref, m.Pool.ca_tls_container_ref,
                     m.Pool.crl_container_ref)


@dataclass(frozen=True)
class Consumer:
    """Something that uses a secret or container (Barbican's consumer shape)."""

    resource_type: str  # listener | pool | container
    resource_id: str


def consumers(session: Session, obj_id: str) -> list[Consumer]:
    """Listeners and pools (not deleted) naming ``obj_id`` in a reference, and
    containers holding it (for a secret)."""
    pattern = f"%{obj_id}%"
    out: list[Consumer] = []
    listeners = session.scalars(select(m.Listener.id).where(
        m.Listener.provisioning_status != c.DELETED,
        or_(*(col.like(pattern) for col in _REF_COLUMNS),
            cast(m.Listener.sni_container_refs, String).like(pattern))))
    out += [Consumer("listener", i) for i in listeners]
    pools = session.scalars(select(m.Pool.id).where(
        m.Pool.provisioning_status != c.DELETED,
        or_(*(col.like(pattern) for col in _POOL_REF_COLUMNS))))
    out += [Consumer("pool", i) for i in pools]
    holders = session.scalars(select(m.ContainerSecret.container_id)
                              .where(m.ContainerSecret.secret_id == obj_id))
    out += [Consumer("container", i) for i in holders]
    return out
