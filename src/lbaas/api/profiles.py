"""The rules flavor profiles and availability zone profiles share.

A profile names a provider and a JSON object of provider-specific settings
(``flavor_data`` / ``availability_zone_data``, sent and stored as a
string). The object must be JSON and an object (else InvalidOption, 400)
that the provider's ``validate_flavor`` / ``validate_availability_zone``
accepts (else its 501). While a flavor (a zone) uses the profile, its
provider and data cannot change and it cannot be deleted (ObjectInUse, 409);
its name can. The routes are :mod:`lbaas.api.routes.flavorprofile` and
:mod:`lbaas.api.routes.availabilityzoneprofile`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import Response
from sqlalchemy.orm import InstrumentedAttribute, Session

from lbaas.api import deps
from lbaas.common import exceptions as exc
from lbaas.drivers.base import ProviderDriver


@dataclass(frozen=True)
class ProfileKind:
    """What tells the two kinds of profile apart."""

    data_field: str  # the settings' field: "flavor_data", "availability_zone_data"
    used_by: InstrumentedAttribute[Any]  # the column of the rows that use a profile
    named: str  # the profile in a 409 ("Flavor profile <id> is in use ...")
    check: Callable[[ProviderDriver], Callable[[dict[str, Any]], None]]  # the driver's check


def validate(state: deps.ApiState, kind: ProfileKind, provider: str, data: str) -> None:
    """Check a profile's settings ``data`` for the enabled ``provider``.

    Raises InvalidOption (400, "<data> is not a valid option for <field>")
    if it is not a JSON object, and the errors of
    :func:`lbaas.api.deps.provider_driver` and :func:`lbaas.api.deps.call_provider`.
    """
    try:
        parsed = json.loads(data)
    except ValueError:
        raise exc.InvalidOption(value=data, option=kind.data_field) from None
    if not isinstance(parsed, dict):
        raise exc.InvalidOption(value=data, option=kind.data_field)
    deps.call_provider(provider, kind.check(deps.provider_driver(state, provider)), parsed)


def in_use(kind: ProfileKind, profile_id: str) -> exc.APIError:
    """The 409 of a change to a profile in use."""
    return exc.ObjectInUse(object=kind.named, id=profile_id)


def change(db: Session, state: deps.ApiState, kind: ProfileKind, profile: Any,
           changes: dict[str, Any]) -> None:
    """Apply an update's ``changes`` (no nulls) to ``profile``.

    A new provider or new settings are refused while the profile is in use
    (ObjectInUse, 409) and checked as on create (:func:`validate`).
    """
    if {"provider_name", kind.data_field} & changes.keys():
        if deps.used_by(db, kind.used_by, profile.id):
            raise in_use(kind, profile.id)
        validate(state, kind, changes.get("provider_name", profile.provider_name),
                 changes.get(kind.data_field, getattr(profile, kind.data_field)))
    deps.apply_changes(profile, changes)


def delete(db: Session, kind: ProfileKind, profile: Any) -> Response:
    """Delete ``profile`` (204) unless it is in use (ObjectInUse, 409)."""
    return deps.delete_unused(db, profile, deps.used_by(db, kind.used_by, profile.id),
                              in_use(kind, profile.id))
