"""Listeners: /v2/lbaas/listeners (api-ref "Listeners").

A listener is a protocol and port on its load balancer's VIP. Creating,
changing or deleting one locks the load balancer (PENDING_UPDATE) and marks
the listener PENDING_CREATE / PENDING_UPDATE / PENDING_DELETE until the
worker has applied the whole load balancer again.

The rules a listener must satisfy follow Octavia's listener controller
(``octavia/api/v2/controllers/listener.py``): one listener per L4 protocol and
port on a load balancer (TCP-based protocols share one port space; UDP and
SCTP have their own), a default pool of the same load balancer with a
compatible protocol, header insertion only on HTTP and TERMINATED_HTTPS,
certificates only where TLS is terminated, ``allowed_cidrs`` of a VIP's IP
version, HSTS only on TERMINATED_HTTPS. :func:`build_listener` is the one
place a listener is constructed, for this API and for the fully-populated
load balancer create. Certificate references given in a request are checked
with the certificate manager before anything is stored (:mod:`lbaas.api.tls`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from lbaas.api import deps, tls
from lbaas.api.deps import ApiState, Ctx, Db, Fields, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of
from lbaas.api.schemas import listener as s
from lbaas.api.schemas.common import Stats, StatsRoot
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["Listeners"])
RESOURCE = "listener"
COLUMNS = columns_of(m.Listener, aliases={"loadbalancer_id": m.Listener.load_balancer_id})

# Header insertion (octavia-lib SUPPORTED_HTTP_HEADERS / SUPPORTED_SSL_HEADERS).
# A header is inserted when its value is "true" (any case), as Octavia's template.
SSL_HEADERS = ("X-SSL-Client-Verify", "X-SSL-Client-Has-Cert", "X-SSL-Client-DN",
               "X-SSL-Client-CN", "X-SSL-Issuer", "X-SSL-Client-SHA1",
               "X-SSL-Client-Not-Before", "X-SSL-Client-Not-After")
HEADER_INSERTION_PROTOCOLS = (c.HTTP, c.TERMINATED_HTTPS)

# The transport each listener protocol uses: listeners on one load balancer
# may share a port number only across transports (Octavia's L4_PROTOCOL_MAP).
L4_PROTOCOL = {c.TCP: c.TCP, c.HTTP: c.TCP, c.HTTPS: c.TCP, c.TERMINATED_HTTPS: c.TCP,
               c.PROMETHEUS: c.TCP, c.UDP: c.UDP, c.SCTP: c.SCTP}

# Request fields stored in a listener column of the same name.
_STORED = tuple(k for k in s.ListenerUpdate.model_fields
                if k not in ("tags", "default_pool_id", "admin_state_up"))
_CREATE_DEFAULTS: dict[str, Any] = {
    "connection_limit": c.DEFAULT_CONNECTION_LIMIT,
    "timeout_client_data": c.DEFAULT_TIMEOUT_CLIENT_DATA,
    "timeout_member_connect": c.DEFAULT_TIMEOUT_MEMBER_CONNECT,
    "timeout_member_data": c.DEFAULT_TIMEOUT_MEMBER_DATA,
    "timeout_tcp_inspect": c.DEFAULT_TIMEOUT_TCP_INSPECT,
    "client_authentication": "NONE",
    "hsts_include_subdomains": False,
    "hsts_preload": False,
}


@router.get("/listeners", response_model=s.ListenerPage)
def list_listeners(ctx: Ctx, listing: Listing) -> JSONResponse:
    """List listeners visible to the caller (``loadbalancer_id`` filters by load balancer)."""
    stmt = select(m.Listener).options(selectinload(m.Listener.l7policies))
    stmt = deps.listed_rows(ctx, listing, RESOURCE, stmt, m.Listener)
    return listing.respond("listeners", stmt, m.Listener,
                           COLUMNS, s.ListenerResponse.dump)


@router.post("/listeners", status_code=201, response_model=s.ListenerRoot)
def create_listener(body: s.ListenerCreateRoot, ctx: Ctx, db: Db,
                    state: State) -> JSONResponse:
    """Create a listener (PENDING_CREATE); its load balancer goes PENDING_UPDATE."""
    data = body.listener
    lb = deps.get_visible(db, ctx, m.LoadBalancer, data.loadbalancer_id)
    ctx.authorize(RESOURCE, "post", lb.project_id)
    listener = build_listener(db, ctx, state, lb, data, None)
    # The table's unique key on protocol and port: a twin committed meanwhile.
    with deps.conflicts_as(db, exc.DuplicateListenerEntry(protocol=listener.protocol,
                                                          port=listener.protocol_port)):
        db.flush()
    status.begin_create(db, lb.id, [listener])
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return deps.respond("listener", s.ListenerResponse.dump(listener), 201)


@router.get("/listeners/{listener_id}", response_model=s.ListenerRoot)
def show_listener(listener_id: str, fields: Fields, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one listener."""
    listener = deps.get_visible(db, ctx, m.Listener, listener_id)
    ctx.authorize(RESOURCE, "get_one", listener.project_id)
    return deps.respond("listener", s.ListenerResponse.dump(listener), fields=fields)


@router.put("/listeners/{listener_id}", response_model=s.ListenerRoot)
def update_listener(listener_id: str, body: s.ListenerUpdateRoot, ctx: Ctx, db: Db,
                    state: State) -> JSONResponse:
    """Change a listener; a null resets a field to its default (PENDING_UPDATE)."""
    listener = deps.get_visible(db, ctx, m.Listener, listener_id)
    ctx.authorize(RESOURCE, "put", listener.project_id)
    lb = listener.load_balancer
    changes = body.listener.model_dump(exclude_unset=True)
    pool = None
    if changes.get("default_pool_id") is not None:
        pool = pool_of(db, lb, changes["default_pool_id"])
        check_pool_protocol(listener.protocol, pool.protocol)
    values = {k: getattr(listener, k) for k in _STORED}
    values.update({k: v for k, v in changes.items() if k in _STORED})
    values = _with_defaults(state, listener.protocol, values, resetting=set(changes))
    _check_settings(state, lb, listener.protocol, values, updating=True)
    _check_refs(db, state, ctx, values, changed=set(changes))
    status.begin_update(db, lb.id, listener)
    for key, value in values.items():
        setattr(listener, key, value)
    if "default_pool_id" in changes:
        listener.default_pool = pool
    deps.apply_changes(listener, {k: v for k, v in changes.items()
                                  if k in ("admin_state_up", "tags")})
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return deps.respond("listener", s.ListenerResponse.dump(listener))


@router.delete("/listeners/{listener_id}", status_code=204, response_class=Response)
def delete_listener(listener_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a listener and its L7 policies (PENDING_DELETE; the worker removes them)."""
    listener = deps.get_visible(db, ctx, m.Listener, listener_id)
    ctx.authorize(RESOURCE, "delete", listener.project_id)
    status.begin_delete(db, listener.load_balancer_id, listener)
    deps.commit(db, state)
    return deps.no_content()


@router.get("/listeners/{listener_id}/stats", response_model=StatsRoot)
def listener_stats(listener_id: str, ctx: Ctx, db: Db) -> JSONResponse:
    """Cumulative traffic counters of one listener (zeros before any traffic)."""
    listener = deps.get_visible(db, ctx, m.Listener, listener_id)
    ctx.authorize(RESOURCE, "get_stats", listener.project_id)
    row = db.get(m.ListenerStatistics, listener.id)
    return deps.respond("stats", {k: int(getattr(row, k) or 0) if row else 0
                                  for k in Stats.model_fields})


# -- construction and rules ----------------------------------------------------

def build_listener(db: Session, ctx: RequestContext, state: ApiState, lb: m.LoadBalancer,
                   data: s.ListenerSingleCreate, default_pool: m.Pool | None,
                   ) -> m.Listener:
    """Validate ``data`` and add a new listener to ``lb.listeners``.

    ``default_pool`` is the listener's default pool when the caller has it in
    hand (a pool created in the same request); otherwise ``data.default_pool_id``
    is looked up. Checks the ``listener`` quota of ``lb``'s project. Neither
    locks ``lb`` nor commits: the caller does (:mod:`lbaas.worker.status`).

    Raises NotFound (404: the default pool is not on ``lb``), ListenerNoChildren
    (400: PROMETHEUS with a default pool), ValidationError / InvalidOption (400:
    the rules in the module doc), InvalidInput (400: a certificate reference
    that is not the caller's or not usable), DisabledOption (400: TLS
    termination turned off by the operator), DuplicateListenerEntry (409),
    QuotaExceeded (403).
    """
    if default_pool is None and data.default_pool_id is not None:
        default_pool = pool_of(db, lb, data.default_pool_id)
    if default_pool is not None:
        check_pool_protocol(data.protocol, default_pool.protocol)
    values = _with_defaults(state, data.protocol,
                            {k: getattr(data, k) for k in _STORED}, resetting=set(_STORED))
    _check_settings(state, lb, data.protocol, values, updating=False)
    _check_refs(db, state, ctx, values, changed=set(_STORED))
    _check_port_free(lb, data.protocol, data.protocol_port)
    deps.check_quota(db, state, lb, "listener")
    # No autoflush until the listener hangs from its load balancer: the pool's
    # backref would otherwise flush a listener that is in no session yet.
    with db.no_autoflush:
        listener = m.Listener(
            id=m.new_id(), project_id=lb.project_id, load_balancer_id=lb.id,
            protocol=data.protocol, protocol_port=data.protocol_port,
            admin_state_up=data.admin_state_up is not False, operating_status=c.OFFLINE,
            default_pool=default_pool, **values)
        listener.tags = list(data.tags or [])
        lb.listeners.append(listener)
    return listener


def pool_of(db: Session, lb: m.LoadBalancer, pool_id: str) -> m.Pool:
    """Pool ``pool_id`` of load balancer ``lb`` (a listener's default pool, an L7
    policy's redirect pool), else NotFound (404), as Octavia's ``_validate_pool``.
    """
    pool = db.get(m.Pool, pool_id)
    if pool is None or pool.load_balancer_id != lb.id or pool.provisioning_status == c.DELETED:
        raise exc.NotFound(resource="Pool", id=pool_id)
    return pool


def check_pool_protocol(listener_protocol: str, pool_protocol: str) -> None:
    """Raise unless a ``listener_protocol`` listener may send to a ``pool_protocol`` pool.

    A pool may serve several listeners (Octavia allows it). Raises
    ListenerNoChildren (400) for a PROMETHEUS listener, ValidationError (400)
    outside VALID_LISTENER_POOL_PROTOCOL_MAP (Octavia's ``_validate_protocol``).
    """
    if listener_protocol == c.PROMETHEUS:
        raise exc.ListenerNoChildren(protocol=c.PROMETHEUS)
    if pool_protocol not in c.VALID_LISTENER_POOL_PROTOCOL_MAP[listener_protocol]:
        raise exc.ValidationError(
            detail=f"The pool protocol '{pool_protocol}' is invalid while the listener "
                   f"protocol is '{listener_protocol}'.")


def _check_port_free(lb: m.LoadBalancer, protocol: str, port: int) -> None:
    """DuplicateListenerEntry (409) if another listener of ``lb`` holds ``port``
    on the same transport (TCP/UDP/SCTP)."""
    transport = L4_PROTOCOL[protocol]
    for other in lb.listeners:
        if other.protocol_port == port and L4_PROTOCOL.get(other.protocol) == transport:
            raise exc.DuplicateListenerEntry(protocol=other.protocol, port=port)


def _terminates_tls(protocol: str, values: Mapping[str, Any]) -> bool:
    """True if the listener decrypts TLS: TERMINATED_HTTPS, or PROMETHEUS with
    certificates (Octavia's ``_can_tls_offload``)."""
    return protocol == c.TERMINATED_HTTPS or (protocol == c.PROMETHEUS
                                              and _has_tls_refs(values))


def _has_tls_refs(values: Mapping[str, Any]) -> bool:
    return bool(values.get("default_tls_container_ref")
                or values.get("client_ca_tls_container_ref")
                or values.get("sni_container_refs"))


def _with_defaults(state: ApiState, protocol: str, values: dict[str, Any],
                   resetting: set[str]) -> dict[str, Any]:
    """``values`` with the nulls among ``resetting`` replaced by their defaults.

    Timeouts, connection limit, client authentication and HSTS flags have
    fixed defaults; TLS ciphers, versions and ALPN protocols default (to
    ``[api_settings] default_listener_*``) only on listeners that terminate
    TLS (null elsewhere). Empty ``allowed_cidrs`` is
    null, duplicates are dropped; ``insert_headers`` and ``sni_container_refs``
    are never null.
    """
    out = dict(values)
    for key, default in _CREATE_DEFAULTS.items():
        if key in resetting and out.get(key) is None:
            out[key] = default
    if _terminates_tls(protocol, out):
        out = tls.with_defaults(out, tls.listener_defaults(state.settings.tls))
    out["insert_headers"] = dict(out.get("insert_headers") or {})
    out["sni_container_refs"] = list(dict.fromkeys(out.get("sni_container_refs") or []))
    out["allowed_cidrs"] = list(dict.fromkeys(out.get("allowed_cidrs") or [])) or None
    return out


def _check_settings(state: ApiState, lb: m.LoadBalancer, protocol: str,
                    values: Mapping[str, Any], updating: bool) -> None:
    """Check a listener's settings as they will be stored (ValidationError /
    InvalidOption, 400), in Octavia's order and words
    (``_validate_create_listener`` / ``_validate_listener_PUT``)."""
    headers = values.get("insert_headers") or {}
    if protocol in (c.UDP, c.SCTP) and (_has_tls_refs(values) or headers):
        tail = "TLS or header insertion." if updating else "TLS."
        raise exc.ValidationError(detail=f"{protocol} protocol listener does not support {tail}")
    if headers:
        _check_insert_headers(protocol, list(headers))
    terminates = _terminates_tls(protocol, values)
    t = state.settings.tls
    if terminates and not t.allow_tls_terminated_listeners:
        raise exc.DisabledOption(option="protocol", value=c.TERMINATED_HTTPS)
    if not terminates and _has_tls_refs(values):
        raise exc.ValidationError(detail="Certificate container references are not allowed "
                                         f"on {protocol} protocol listeners.")
    has_cert = bool(values.get("default_tls_container_ref") or values.get("sni_container_refs"))
    if values.get("client_ca_tls_container_ref") and not has_cert:
        raise exc.ValidationError(detail="An SNI or default certificate container reference "
                                         "must be provided with a client CA container "
                                         "reference.")
    if terminates and not has_cert:
        what = f"{protocol} with TLS" if protocol == c.PROMETHEUS else protocol
        raise exc.ValidationError(detail="An SNI or default certificate container reference "
                                         f"must be provided for {what} protocol listeners.")
    auth = values.get("client_authentication") or "NONE"
    if auth != "NONE" and not values.get("client_ca_tls_container_ref"):
        raise exc.ValidationError(detail=f"Client authentication setting {auth} requires a "
                                         "client CA container reference.")
    if values.get("client_crl_container_ref") and not values.get("client_ca_tls_container_ref"):
        raise exc.ValidationError(detail="A client authentication CA reference is required to "
                                         "specify a client authentication revocation list.")
    tls.check_ciphers(values.get("tls_ciphers"), t)
    tls.check_tls_versions(values.get("tls_versions"), t)
    tls.check_alpn_protocols(values.get("alpn_protocols"))
    _check_allowed_cidrs(lb, values.get("allowed_cidrs") or [])
    _check_hsts(protocol, values, updating)


def _check_refs(db: Session, state: ApiState, ctx: RequestContext,
                values: Mapping[str, Any], changed: set[str]) -> None:
    """Check the certificate references among ``changed`` (all on create) with the
    certificate manager, as they will be stored (InvalidInput, 400, naming the field).

    A changed CA or CRL checks the pair as stored: the CRL must be the CA's.
    """
    manager, caller = state.certificates.bound(db), tls.caller_of(ctx)
    if "default_tls_container_ref" in changed and values.get("default_tls_container_ref"):
        tls.check_certificate(manager, caller, "default_tls_container_ref",
                              values["default_tls_container_ref"])
    if "sni_container_refs" in changed:
        for ref in values.get("sni_container_refs") or []:
            tls.check_certificate(manager, caller, "sni_container_refs", ref)
    if changed & {"client_ca_tls_container_ref", "client_crl_container_ref"}:
        tls.check_ca_and_crl(manager, caller, "client_ca_tls_container_ref",
                             values.get("client_ca_tls_container_ref"),
                             "client_crl_container_ref", values.get("client_crl_container_ref"))


def _check_insert_headers(protocol: str, names: list[str]) -> None:
    """Header insertion: HTTP and TERMINATED_HTTPS only; X-SSL-* headers only
    where TLS is terminated (InvalidOption, 400)."""
    if protocol not in HEADER_INSERTION_PROTOCOLS:
        raise exc.InvalidOption(value="insert-headers", option=f"a {protocol} protocol listener.")
    unknown = [n for n in names if n not in c.INSERT_HEADERS_HTTP and n not in SSL_HEADERS]
    if unknown:
        raise exc.InvalidOption(value=unknown, option="insert_headers")
    ssl = [n for n in names if n in SSL_HEADERS]
    if ssl and protocol != c.TERMINATED_HTTPS:
        raise exc.InvalidOption(value=ssl, option=f"{protocol} protocol listener.")


def _check_allowed_cidrs(lb: m.LoadBalancer, cidrs: list[str]) -> None:
    """Each CIDR must have the IP version of one of ``lb``'s VIPs; none with
    custom VIP security groups (ValidationError, 400)."""
    if not cidrs:
        return
    if lb.vip_sg_ids:
        raise exc.ValidationError(detail="Allowed CIDRs are not allowed when using custom VIP "
                                         "Security Groups.")
    vips = [a for a in [lb.vip_address, *[v.get("ip_address") for v in
                                          lb.additional_vips or []]] if a]
    versions = {ipaddress.ip_address(v).version for v in vips}
    for cidr in cidrs:
        if ipaddress.ip_network(cidr, strict=False).version not in versions:
            raise exc.ValidationError(detail=f"CIDR {cidr} IP version incompatible with all "
                                             f"VIPs {vips} IP version.")


def _check_hsts(protocol: str, values: Mapping[str, Any], updating: bool) -> None:
    max_age = values.get("hsts_max_age")
    if (values.get("hsts_include_subdomains") or values.get("hsts_preload")) and max_age is None:
        if updating:
            detail = ("Cannot enable hsts_include_subdomains or hsts_preload if hsts_max_age "
                      "was not set as well.")
        else:
            detail = ("HSTS configuration options hsts_include_subdomains and hsts_preload "
                      "only make sense if hsts_max_age is set as well.")
        raise exc.ValidationError(detail=detail)
    if max_age is not None and protocol != c.TERMINATED_HTTPS:
        raise exc.ValidationError(detail="The HSTS feature can only be used for listeners using "
                                         "the TERMINATED_HTTPS protocol.")
