"""The control plane's side of remote agents: HTTPS with mutual TLS (httpx + ssl).

:class:`RemoteAgents` is the :class:`~lbaas.agent.base.AgentClient` of the
haproxy provider when ``[controller_worker] amphora_driver =
amphora_haproxy_rest_driver``: every call goes to the agent that runs the
load balancer (:mod:`lbaas.agent.server` is the other end). Which agent that
is comes from the control plane (``locate``: the agents of a load balancer's
amphorae, ``endpoint``: an agent's URL), so this module knows no database.

TLS (:class:`AgentTLS`): the control plane presents ``[haproxy_amphora]
client_cert`` and accepts an agent only with a certificate from
``server_ca`` for the address it dials (hostname checking on). The common
name of the agent's certificate is returned with its heartbeat, for the
registry to check against the host the heartbeat names.

Health readings come with heartbeats (``observation``); a load balancer
with no recent heartbeat reading is asked for directly.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import TypeAdapter

from lbaas.agent.base import ApplyResult, LoadBalancerHealth, LoadBalancerStats
from lbaas.agent.heartbeat import HEARTBEAT, Heartbeat, HeartbeatReply, to_json
from lbaas.agent.pki import common_name
from lbaas.common.exceptions import DriverError, UnsupportedOption
from lbaas.dataplane import spec as specs
from lbaas.dataplane.spec import LoadBalancerSpec

_RESULT: TypeAdapter[ApplyResult] = TypeAdapter(ApplyResult)
_STATS: TypeAdapter[LoadBalancerStats] = TypeAdapter(LoadBalancerStats)
_HEALTH: TypeAdapter[LoadBalancerHealth] = TypeAdapter(LoadBalancerHealth)


@dataclass(frozen=True)
class AgentTLS:
    """The control plane's TLS identity towards agents: ``client_cert`` (certificate +
    key PEM) and ``server_ca`` (the CA agents' certificates must come from)."""

    client_cert: str
    server_ca: str

    def context(self) -> ssl.SSLContext:
        """A client context: verifies the agent (CA and hostname), presents ours."""
        ctx = ssl.create_default_context(cafile=self.server_ca)
        ctx.load_cert_chain(self.client_cert)
        return ctx


class AgentConnection:
    """One agent at ``endpoint`` (``https://host:port``). Seconds for timeouts."""

    def __init__(self, endpoint: str, tls: AgentTLS, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self._client = httpx.Client(base_url=endpoint, verify=tls.context(),
                                    timeout=httpx.Timeout(timeout, connect=3.0))

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, body: str | bytes | None = None,
              timeout: float | None = None) -> httpx.Response:
        try:
            response = self._client.request(
                method, path, content=body,
                headers={"Content-Type": "application/json"} if body is not None else None,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as e:
            raise DriverError(f"agent {self.endpoint} unreachable: {type(e).__name__}: {e}"
                              ) from None
        if response.status_code < 300:
            return response
        try:
            fault: dict[str, Any] = response.json()
        except ValueError:
            fault = {}
        reason = str(fault.get("reason") or f"HTTP {response.status_code}: "
                     f"{response.text[:200]}")
        if fault.get("type") == "UnsupportedOption":
            raise UnsupportedOption(reason)
        raise DriverError(reason)

    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        return _RESULT.validate_json(self._call("PUT", f"/v1/loadbalancers/{lb.id}",
                                                specs.to_json(lb)).content)

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        return _RESULT.validate_json(self._call(
            "POST", f"/v1/loadbalancers/{lb.id}/failover", specs.to_json(lb)).content)

    def delete(self, lb_id: str) -> None:
        self._call("DELETE", f"/v1/loadbalancers/{lb_id}")

    def stats(self, lb_id: str) -> LoadBalancerStats:
        """The agent's reading now (a ``taken_at`` on the agent's clock is dropped)."""
        return dataclasses.replace(_STATS.validate_json(self._call(
            "GET", f"/v1/loadbalancers/{lb_id}/stats", timeout=5.0).content), taken_at=None)

    def health(self, lb_id: str) -> LoadBalancerHealth:
        return _HEALTH.validate_json(self._call("GET", f"/v1/loadbalancers/{lb_id}/health",
                                                timeout=5.0).content)

    def heartbeat(self) -> tuple[Heartbeat, str | None]:
        """The agent's heartbeat and the common name of the certificate it presented."""
        try:
            with self._client.stream("GET", "/v1/heartbeat", timeout=10.0) as response:
                stream = response.extensions["network_stream"]
                peer = stream.get_extra_info("ssl_object").getpeercert()
                response.read()
        except httpx.HTTPError as e:
            raise DriverError(f"agent {self.endpoint} unreachable: {type(e).__name__}: {e}"
                              ) from None
        if response.status_code != 200:
            raise DriverError(f"agent {self.endpoint}: heartbeat HTTP {response.status_code}")
        return HEARTBEAT.validate_json(response.content), common_name(peer or {})

    def reply(self, reply: HeartbeatReply) -> None:
        self._call("POST", "/v1/heartbeat/reply", to_json(reply), timeout=30.0)


class RemoteAgents:
    """:class:`~lbaas.agent.base.AgentClient` over the agents that run each load balancer.

    ``endpoint(agent_id)``: an agent's URL (None: unknown or in-process);
    ``locate(lb_id)``: the URLs of the agents of ``lb_id``'s amphorae;
    ``observation(lb_id)``: its newest heartbeat reading, if recent.
    ACTIVE_STANDBY load balancers are served whole by the agent of their
    first amphora (two amphorae on two remote agents: not yet).
    """

    def __init__(self, tls: AgentTLS, endpoint: Callable[[str], str | None],
                 locate: Callable[[str], list[str]],
                 observation: Callable[[str], LoadBalancerStats | None]) -> None:
        self.tls = tls
        self._endpoint = endpoint
        self._locate = locate
        self._observation = observation
        self._connections: dict[str, AgentConnection] = {}

    def connection(self, endpoint: str) -> AgentConnection:
        """The (cached) connection to the agent at ``endpoint``."""
        conn = self._connections.get(endpoint)
        if conn is None:
            conn = self._connections.setdefault(endpoint, AgentConnection(endpoint, self.tls))
        return conn

    def _of_spec(self, lb: LoadBalancerSpec) -> AgentConnection:
        for amphora in lb.amphorae:
            url = self._endpoint(amphora.agent_id) if amphora.agent_id else None
            if url:
                return self.connection(url)
        raise DriverError(f"load balancer {lb.id} is placed on no remote agent")

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Nothing to check before placement: the agent checks the VIPs when it applies."""

    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        return self._of_spec(lb).apply(lb)

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        return self._of_spec(lb).failover(lb)

    def delete(self, lb_id: str) -> None:
        """Delete on every agent that runs it (none left, e.g. its agent is dead: done)."""
        for url in self._locate(lb_id):
            self.connection(url).delete(lb_id)

    def stats(self, lb_id: str) -> LoadBalancerStats:
        seen = self._observation(lb_id)
        if seen is not None:
            return seen
        urls = self._locate(lb_id)
        if not urls:
            return LoadBalancerStats(lb_id=lb_id, running=False,
                                     error="placed on no agent that answers")
        return self.connection(urls[0]).stats(lb_id)

    def health(self, lb_id: str) -> LoadBalancerHealth:
        urls = self._locate(lb_id)
        if not urls:
            return LoadBalancerHealth(lb_id=lb_id, alive=False)
        return self.connection(urls[0]).health(lb_id)

    def start(self) -> None:
        """Nothing: the agents run on their own."""

    def stop(self) -> None:
        """Close the connections (the agents keep serving)."""
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
