"""GET /healthcheck: is this API process able to serve, its database included.

The shape is oslo.middleware's healthcheck, which Octavia's API runs:
``200`` with ``OK`` when healthy, ``503`` with the reason when not; as
``text/plain`` by default, or ``{"detailed": false, "reasons": [...]}`` when
the client asks for JSON. Healthy means the database takes a write (a
write that changes nothing, :func:`lbaas.db.session.write_probe`): a full
disk, a read-only database or a lost PostgreSQL server are reported. As in
Octavia, the result is reused for ``[api_settings]
healthcheck_refresh_interval`` seconds, so probes cannot load the database.
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from lbaas.api.deps import State
from lbaas.db.session import write_probe

router = APIRouter(tags=["Versions"])


class HealthcheckReasons(BaseModel):
    """The JSON form of the answer (oslo.middleware's, not detailed)."""

    detailed: bool
    reasons: list[str]


# Both answers in both forms: text/plain by default, JSON on request.
_BODY = {"content": {"text/plain": {"schema": {"type": "string"}},
                     "application/json": {"schema": HealthcheckReasons.model_json_schema()}}}

_lock = threading.Lock()
_last: dict[int, tuple[float, str | None]] = {}  # id(state) -> (monotonic time, failure)


@router.get("/healthcheck", response_class=PlainTextResponse,
            responses={200: {"description": "OK", **_BODY},
                       503: {"description": "The database cannot be written", **_BODY}})
def healthcheck(request: Request, state: State) -> Response:
    """200 "OK" if the API and its database can serve; 503 with the reason if not."""
    interval = state.settings.healthcheck_refresh_interval
    with _lock:
        checked, failure = _last.get(id(state), (float("-inf"), None))
        if time.monotonic() - checked >= interval:
            problem = write_probe(state.sessions)
            failure = f"The lbaas database cannot be written: {problem}" if problem else None
            _last[id(state)] = (time.monotonic(), failure)
    reason = failure or "OK"
    status = 503 if failure else 200
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"detailed": False, "reasons": [reason]}, status_code=status)
    return PlainTextResponse(reason, status_code=status)
