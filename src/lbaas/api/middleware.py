"""ASGI middleware in front of the API.

:class:`BodySizeLimit` is Octavia's request size limit (oslo.middleware's
``sizelimit``, ``[oslo_middleware] max_request_body_size``, 112 KiB by
default): a body announced larger by ``Content-Length`` is refused before it
is read, and a body sent in chunks is counted as it arrives, so that one
request can neither fill the server's memory nor hold the database while a
huge object is parsed and stored. The refusal is a 413 with Octavia's error
body (FastAPI's own ``max_body_size`` answers in plain text).
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbaas.api import errors
from lbaas.common import exceptions as exc


class BodySizeLimit:
    """Refuse request bodies larger than ``limit`` bytes with 413.

    A ``Content-Length`` over the limit is answered at once. A body without
    one (chunked) is counted while the application reads it; past the limit
    the read raises an HTTP 413, which the API's error handler writes.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = exc.RequestTooLarge(limit=self.limit)
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await errors.fault(refusal.code, refusal.msg)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(refusal.code, refusal.msg)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None if absent or not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
