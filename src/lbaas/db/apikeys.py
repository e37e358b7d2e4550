"""lbaas's own API keys (``auth_strategy = apikey``): issue, look up, revoke.

A key is ``lbaas_`` and 43 URL-safe characters: 256 random bits from
:mod:`secrets`. Only its SHA-256 digest (hashlib, i.e. OpenSSL) is stored,
and a request's key is found by its digest. A slow password hash (bcrypt,
argon2) exists to make guessing a *low-entropy* secret expensive; a 256-bit
random key cannot be guessed, so a fast digest loses nothing, while a slow
hash would cost every request (and give anyone a cheap way to burn CPU).
The key itself is shown once, when it is made, and cannot be recovered.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.db import models as m

PREFIX = "lbaas_"


def digest(key: str) -> str:
    """The stored form of ``key``: its SHA-256, in hex (64 characters)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def issue(session: Session, project_id: str, roles: list[str],
          description: str | None = None) -> tuple[m.ApiKey, str]:
    """A new key for ``project_id`` with ``roles``: the row (added, not committed) and
    the key, which is never stored."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = m.ApiKey(secret_hash=digest(key), project_id=project_id, roles=",".join(roles),
                   description=description)
    session.add(row)
    return row, key


def find(session: Session, key: str) -> m.ApiKey | None:
    """The key's row, or None if no such key was issued (or it was revoked)."""
    if not key.startswith(PREFIX):
        return None
    return session.scalar(select(m.ApiKey).where(m.ApiKey.secret_hash == digest(key)))
