"""One place that turns errors into Octavia's error body.

Every error response is ``{"faultcode": "Client"|"Server", "faultstring":
<message>, "debuginfo": null}``. Request validation failures are 400 (never
FastAPI's default 422) and name the field, in wsme's words as Octavia prints
them: ``Invalid input for field/attribute protocol. Value: 'FOO'. ...``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lbaas.api import keymanager
from lbaas.common import exceptions as exc
from lbaas.db.session import storage_problem

LOG = logging.getLogger(__name__)


class Fault(BaseModel):
    """Octavia's error body."""

    faultcode: str
    faultstring: str
    debuginfo: str | None = None


def fault(status: int, message: str, request: Request | None = None) -> JSONResponse:
    """An error response with Octavia's body (Barbican's for the key-manager API at /v1).

    A message repeating text that is not UTF-8 (a lone surrogate the client
    sent) shows it escaped (``\ud800``).
    """
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    if request is not None and keymanager.is_keymanager_path(request.url.path):
        return keymanager.fault(status, message)
    body = {"faultcode": "Client" if status < 500 else "Server",
            "faultstring": message, "debuginfo": None}
    return JSONResponse(status_code=status, content=body)


def _field_of(loc: tuple[Any, ...]) -> str:
    names = [str(p) for p in loc if isinstance(p, str) and p != "body"]
    # pydantic appends the validator's name for tagged/function validators
    names = [n for n in names if not n.startswith("function-")]
    return names[-1] if names else "body"


def _parent_of(loc: tuple[Any, ...]) -> str:
    names = [str(p) for p in loc[:-1] if isinstance(p, str) and p != "body"]
    return names[-1] if names else "body"


def validation_message(errors: list[Any]) -> str:
    """The faultstring for a list of pydantic errors: the first one decides.

    pydantic lists missing and invalid fields before unknown attributes,
    which is also wsme's order (a missing mandatory field wins).
    """
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        extras = sorted({_field_of(tuple(e["loc"])) for e in errors
                         if e.get("type") == "extra_forbidden"})
        return exc.UnknownAttribute(argument=_parent_of(loc),
                                    attributes=", ".join(extras)).msg
    if kind == "json_invalid":
        return "Invalid JSON in the request body."
    value = err.get("input")
    if kind == "missing":
        value, detail = None, "Mandatory field missing."
    else:
        detail = str(err.get("msg", "Invalid value"))
        detail = detail.removeprefix("Value error, ")
        if not detail.endswith("."):
            detail += "."
    return exc.InvalidInput(field=_field_of(loc), value=value, detail=detail).msg


def keymanager_validation_message(errors: list[Any], path: str) -> str:
    """Barbican's words for a request body (to ``path``) that does not fit its schema."""
    err = errors[0]
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "json_invalid" or loc in ((), ("body",)):
        return "Malformed JSON"
    schema = "Container" if "/containers" in path else "Secret"
    detail = str(err.get("msg", "Invalid value")).removeprefix("Value error, ")
    return (f"Provided object does not match schema '{schema}': {detail}. "
            f"Invalid property: '{_field_of(loc)}'")


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(exc.APIError)
    async def _api_error(request: Request, error: exc.APIError) -> JSONResponse:
        return fault(error.code, error.msg, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        if keymanager.is_keymanager_path(request.url.path):
            return fault(400, keymanager_validation_message(list(error.errors()),
                                                      request.url.path), request)
        return fault(400, validation_message(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "Error"
        if error.status_code == 404 and message == "Not Found":
            message = "The resource could not be found."
        if error.status_code == 405:
            message = "The method is not allowed for the requested URL."
        return fault(error.status_code, message, request)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_request: Request, error: SQLAlchemyError) -> JSONResponse:
        problem = storage_problem(error)
        if problem is None:
            LOG.error("database error", exc_info=error)
            return fault(500, "An unknown exception occurred.")
        full, reason = problem
        LOG.warning("database cannot take the request: %s", reason)
        refusal = exc.DatabaseFull(reason=reason) if full \
            else exc.DatabaseUnavailable(reason=reason)
        return fault(refusal.code, refusal.msg)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        LOG.exception("unhandled error")
        return fault(500, "An unknown exception occurred.", request)
