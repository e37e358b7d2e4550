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

import contextlib
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
from lbaas.common import constants as c
from lbaas.common.exceptions import DriverError, UnsupportedOption
from lbaas.dataplane import spec as specs
from lbaas.dataplane.keepalived import await_master
from lbaas.dataplane.runtime import combine
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec

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

    def heartbeat(self, timeout: float = 10.0) -> tuple[Heartbeat, str | None]:
        """The agent's heartbeat and the common name of the certificate it presented
        (``timeout`` in seconds: a heartbeat slower than this is a missed one)."""
        try:
            with self._client.stream("GET", "/v1/heartbeat", timeout=timeout) as response:
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

    ACTIVE_STANDBY with the two amphorae on two agents: each agent gets the
    whole spec and runs its own amphora; the agent of the amphora
    keepalived reports MASTER is changed last (a new pair: the one built
    for MASTER first, so that it takes the VIP), and apply() returns once
    one amphora is MASTER (raises DriverError if none is within 4 advert
    intervals and 2 s). Readings of the two agents are combined
    (:func:`~lbaas.dataplane.runtime.combine`).
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

    def _placed(self, lb: LoadBalancerSpec) -> dict[str, list[AmphoraSpec]]:
        """The URL of each agent of ``lb``'s amphorae -> its amphorae (DriverError: none)."""
        placed: dict[str, list[AmphoraSpec]] = {}
        for amphora in lb.amphorae:
            url = self._endpoint(amphora.agent_id) if amphora.agent_id else None
            if url:
                placed.setdefault(url, []).append(amphora)
        if not placed:
            raise DriverError(f"load balancer {lb.id} is placed on no remote agent")
        return placed

    def validate(self, lb: LoadBalancerSpec) -> None:
        """Nothing to check before placement: the agent checks the VIPs when it applies."""

    def apply(self, lb: LoadBalancerSpec) -> ApplyResult:
        placed = self._placed(lb)
        if len(placed) == 1:
            return self.connection(next(iter(placed))).apply(lb)
        try:
            masters = {a.id for a in self.stats(lb.id).amphorae if a.vrrp_state == "MASTER"}
        except DriverError:
            masters = set()

        def last(url: str) -> bool:  # the MASTER now, else (a new pair) the one built as BACKUP
            mine = placed[url]
            if masters:
                return any(a.id in masters for a in mine)
            return all(a.role != c.AMPHORA_ROLE_MASTER for a in mine)

        done = [self.connection(url).apply(lb) for url in sorted(placed, key=last)]
        self._await_master(lb, list(placed))
        return ApplyResult.of_amphorae(lb.id, [r for result in done
                                               for r in (result.amphorae or (result,))])

    def _await_master(self, lb: LoadBalancerSpec, urls: list[str]) -> None:
        """Until an amphora on one of the agents at ``urls`` is MASTER (ProcessError)."""
        def states() -> dict[str, str | None]:
            seen: dict[str, str | None] = {}
            for url in urls:
                with contextlib.suppress(DriverError):  # that agent is being failed over
                    seen.update({a.id: a.vrrp_state
                                 for a in self.connection(url).stats(lb.id).amphorae})
            return seen

        await_master(states, lb.vrrp.advert_int if lb.vrrp is not None else 1.0, poll=0.05)

    def failover(self, lb: LoadBalancerSpec) -> ApplyResult:
        return self.connection(next(iter(self._placed(lb)))).failover(lb)

    def delete(self, lb_id: str) -> None:
        """Delete on every agent that runs it (none left, e.g. its agent is dead: done)."""
        for url in self._locate(lb_id):
            self.connection(url).delete(lb_id)

    def kept_stats(self, lb_id: str) -> LoadBalancerStats | None:
        """None: :meth:`stats` says (from heartbeats, or asking the agents)."""
        return None

    def stats(self, lb_id: str) -> LoadBalancerStats:
        seen = self._observation(lb_id)
        if seen is not None:
            return seen
        urls = self._locate(lb_id)
        if not urls:
            return LoadBalancerStats(lb_id=lb_id, running=False,
                                     error="placed on no agent that answers")
        if len(urls) == 1:
            return self.connection(urls[0]).stats(lb_id)
        return combine(lb_id, [self.connection(url).stats(lb_id) for url in urls])

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
