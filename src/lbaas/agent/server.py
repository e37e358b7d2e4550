"""``lbaas agent serve``: a data-plane host's agent behind HTTPS with mutual TLS.

The agent runs the host's amphorae (:class:`~lbaas.agent.local.LocalAgent`,
the same code as inside a standalone ``lbaas serve``) and serves the
:class:`~lbaas.agent.base.AgentClient` calls to the control plane
(:mod:`lbaas.agent.remote` is the other end), JSON over HTTPS:

=========================================  ==========================================
``PUT /v1/loadbalancers/{id}``             apply the spec in the body -> ApplyResult
``POST /v1/loadbalancers/{id}/failover``   rebuild from the spec in the body
``DELETE /v1/loadbalancers/{id}``          stop and remove it (204; absent: no error)
``GET /v1/loadbalancers/{id}/stats``       LoadBalancerStats
``GET /v1/loadbalancers/{id}/health``      LoadBalancerHealth
``POST /v1/validate``                      the VIPs of the spec in the body are servable
``GET /v1/heartbeat``                      a Heartbeat (statuses and counters of every
                                           load balancer held)
``POST /v1/heartbeat/reply``               the control plane's HeartbeatReply
=========================================  ==========================================

A failure of the data plane is ``409 {"type": "DriverError", "reason": ...}``;
a spec this host cannot serve is ``400 {"type": "UnsupportedOption",
"reason": ...}``; the client raises the same exceptions again.

Heartbeats are pulled: the control plane asks every ``heartbeat_interval``
seconds (the agent needs no address of the control plane, and no database
credentials: it knows only the specs it was sent). The first heartbeat
after the agent starts, and the first after none was asked for
``heartbeat_timeout`` seconds (the control plane was down), ask for
reconciliation (``resync``): the control plane applies again every load
balancer whose spec differs from the database's, and names for deletion
those it does not place here. HAProxy keeps serving meanwhile.

TLS: the server presents ``[amphora_agent] agent_server_cert`` and
requires a client certificate from ``agent_server_ca`` (``ssl.CERT_REQUIRED``):
a peer without one is refused during the handshake.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from lbaas.agent.heartbeat import REPLY, Heartbeat, Heartbeater, HeartbeatReply, to_json
from lbaas.agent.local import LocalAgent
from lbaas.common import constants as c
from lbaas.common.exceptions import DriverError, UnsupportedOption
from lbaas.dataplane import spec as specs

LOG = logging.getLogger(__name__)


async def _body(request: Request) -> bytes:
    return await request.body()


_BODY: Any = Depends(_body)  # the raw request body (a spec's JSON is read by pydantic once)


def _refused(_: Heartbeat) -> HeartbeatReply:
    raise RuntimeError("heartbeats of a remote agent are pulled, not sent")


def pulled_heartbeats(agent: LocalAgent, host: str, availability_zone: str | None,
                      configurations: dict[str, Any]) -> Heartbeater:
    """The heartbeats of a remote agent: taken when asked for, with health readings,
    asking for reconciliation first."""
    identity = Heartbeat(host=host, binary=c.AGENT_BINARY, availability_zone=availability_zone,
                         started_at=datetime.now(UTC).isoformat(),
                         configurations=configurations)
    return Heartbeater(agent, identity, _refused, interval=0.0, with_stats=True, reconcile=True)


def create_agent_app(agent: LocalAgent, heartbeats: Heartbeater,
                     heartbeat_timeout: float = 20.0) -> FastAPI:
    """The agent's HTTP application (see the module docstring). ``heartbeat_timeout`` in
    seconds: a silence longer than this makes the next heartbeat ask for reconciliation."""
    app = FastAPI(title="lbaas agent", openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(DriverError)
    async def _driver_error(_: Request, e: DriverError) -> JSONResponse:
        return JSONResponse({"type": "DriverError", "reason": e.reason}, status_code=409)

    @app.exception_handler(UnsupportedOption)
    async def _unsupported(_: Request, e: UnsupportedOption) -> JSONResponse:
        return JSONResponse({"type": "UnsupportedOption", "reason": e.user_msg},
                            status_code=400)

    def _spec(lb_id: str, body: bytes) -> specs.LoadBalancerSpec:
        lb = specs.from_json(body)
        if lb.id != lb_id:
            raise UnsupportedOption(f"the spec is of load balancer {lb.id}, not {lb_id}")
        return lb

    def _json(value: Any) -> Response:
        return JSONResponse(dataclasses.asdict(value))

    @app.put("/v1/loadbalancers/{lb_id}")
    def apply(lb_id: str, body: bytes = _BODY) -> Response:
        return _json(agent.apply(_spec(lb_id, body)))

    @app.post("/v1/loadbalancers/{lb_id}/failover")
    def failover(lb_id: str, body: bytes = _BODY) -> Response:
        return _json(agent.failover(_spec(lb_id, body)))

    @app.delete("/v1/loadbalancers/{lb_id}", status_code=204)
    def delete(lb_id: str) -> Response:
        agent.delete(lb_id)
        return Response(status_code=204)

    @app.get("/v1/loadbalancers/{lb_id}/stats")
    def stats(lb_id: str) -> Response:
        return _json(agent.stats(lb_id))

    @app.get("/v1/loadbalancers/{lb_id}/health")
    def health(lb_id: str) -> Response:
        return _json(agent.health(lb_id))

    @app.post("/v1/validate", status_code=204)
    def validate(body: bytes = _BODY) -> Response:
        agent.validate(specs.from_json(body))
        return Response(status_code=204)

    @app.get("/v1/heartbeat")
    def heartbeat() -> Response:
        last = heartbeats.last_success
        if last is not None and time.monotonic() - last > heartbeat_timeout:
            heartbeats.resync = True  # nobody asked for a while: the control plane was away
        return Response(to_json(heartbeats.take()), media_type="application/json")

    @app.post("/v1/heartbeat/reply", status_code=204)
    def reply(body: bytes = _BODY) -> Response:
        heartbeats.answer(REPLY.validate_json(body))
        return Response(status_code=204)

    return app


def server_ssl(cert_file: str, ca_file: str) -> dict[str, Any]:
    """uvicorn's TLS settings: present ``cert_file`` (certificate + key PEM), require a
    client certificate issued by ``ca_file``."""
    return {"ssl_certfile": cert_file, "ssl_keyfile": cert_file, "ssl_ca_certs": ca_file,
            "ssl_cert_reqs": ssl.CERT_REQUIRED}
