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
load balancer create. Certificate references are stored as given: lbaas has
no certificate store to check them against (Octavia asks Barbican).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from lbaas.api import deps
from lbaas.api.deps import ApiState, Ctx, Db, Listing, State
from lbaas.api.policy import RequestContext
from lbaas.api.query import columns_of, paginate
from lbaas.api.schemas import listener as s
from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m
from lbaas.worker import status

router = APIRouter(tags=["Listeners"])
RESOURCE = "listener"
COLUMNS = columns_of(m.Listener, aliases={"loadbalancer_id": m.Listener.load_balancer_id})

# Octavia's [api_settings] defaults for TLS-terminating listeners
# (default_listener_ciphers = CIPHERS_OWASP_SUITE_B, default_listener_tls_versions,
# default_listener_alpn_protocols).
DEFAULT_TLS_CIPHERS = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")
DEFAULT_TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
DEFAULT_ALPN_PROTOCOLS = ("h2", "http/1.1", "http/1.0")
TLS_VERSIONS = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

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

_CIPHER_STRING = re.compile(r"[A-Za-z0-9\-+!:@=_.]+\Z")

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


def get_listener(db: Session, ctx: RequestContext, listener_id: str) -> m.Listener:
    """The listener ``listener_id`` if the caller may see it, else NotFound (404)."""
    listener = db.get(m.Listener, listener_id)
    return deps.visible_or_404(ctx, listener, "Listener", listener_id)


@router.get("/listeners", response_model=s.ListenersRoot)
def list_listeners(request: Request, ctx: Ctx, db: Db, listing: Listing,
                   state: State) -> JSONResponse:
    """List listeners visible to the caller (``loadbalancer_id`` filters by load balancer)."""
    ctx.authorize(RESOURCE, "get_all")
    stmt = select(m.Listener).options(selectinload(m.Listener.l7policies))
    if not ctx.sees_all_projects:
        stmt = stmt.where(m.Listener.project_id == ctx.project_id)
    page = paginate(db, request, listing, stmt, m.Listener, COLUMNS,
                    state.settings.api_base_uri)
    return deps.respond_list("listeners", [s.ListenerResponse.dump(li) for li in page.rows],
                             page.links, listing.fields)


@router.post("/listeners", status_code=201, response_model=s.ListenerRoot)
def create_listener(body: s.ListenerCreateRoot, ctx: Ctx, db: Db,
                    state: State) -> JSONResponse:
    """Create a listener (PENDING_CREATE); its load balancer goes PENDING_UPDATE."""
    data = body.listener
    lb = deps.visible_or_404(ctx, db.get(m.LoadBalancer, data.loadbalancer_id),
                             "Load Balancer", data.loadbalancer_id)
    ctx.authorize(RESOURCE, "post", lb.project_id)
    listener = build_listener(db, ctx, state, lb, data, None)
    _flush(db, listener)
    status.begin_create(db, lb.id, [listener])
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return deps.respond("listener", s.ListenerResponse.dump(listener), 201)


@router.get("/listeners/{listener_id}", response_model=s.ListenerRoot)
def show_listener(listener_id: str, request: Request, ctx: Ctx, db: Db) -> JSONResponse:
    """Show one listener."""
    listener = get_listener(db, ctx, listener_id)
    ctx.authorize(RESOURCE, "get_one", listener.project_id)
    return deps.respond("listener", s.ListenerResponse.dump(listener),
                        fields=deps.fields_of(request))


@router.put("/listeners/{listener_id}", response_model=s.ListenerRoot)
def update_listener(listener_id: str, body: s.ListenerUpdateRoot, ctx: Ctx, db: Db,
                    state: State) -> JSONResponse:
    """Change a listener; a null resets a field to its default (PENDING_UPDATE)."""
    listener = get_listener(db, ctx, listener_id)
    ctx.authorize(RESOURCE, "put", listener.project_id)
    lb = listener.load_balancer
    changes = body.listener.model_dump(exclude_unset=True)
    pool = None
    if changes.get("default_pool_id") is not None:
        pool = _pool_of(db, lb, changes["default_pool_id"])
        _check_default_pool(lb, listener.protocol, pool)
    values = {k: getattr(listener, k) for k in _STORED}
    values.update({k: v for k, v in changes.items() if k in _STORED})
    values = _with_defaults(listener.protocol, values, resetting=set(changes))
    _check_settings(lb, listener.protocol, values, updating=True)
    status.begin_update(db, lb.id, listener)
    for key, value in values.items():
        setattr(listener, key, value)
    if "default_pool_id" in changes:
        listener.default_pool = pool
    if changes.get("admin_state_up") is not None:
        listener.admin_state_up = changes["admin_state_up"]
    if "tags" in changes:
        listener.tags = list(changes["tags"] or [])
    deps.check_provider(state, lb)
    deps.commit(db, state)
    return deps.respond("listener", s.ListenerResponse.dump(listener))


@router.delete("/listeners/{listener_id}", status_code=204, response_class=Response)
def delete_listener(listener_id: str, ctx: Ctx, db: Db, state: State) -> Response:
    """Delete a listener and its L7 policies (PENDING_DELETE; the worker removes them)."""
    listener = get_listener(db, ctx, listener_id)
    ctx.authorize(RESOURCE, "delete", listener.project_id)
    status.begin_delete(db, listener.load_balancer_id, listener)
    deps.commit(db, state)
    return deps.no_content()


@router.get("/listeners/{listener_id}/stats", response_model=s.ListenerStatsRoot)
def listener_stats(listener_id: str, ctx: Ctx, db: Db) -> JSONResponse:
    """Cumulative traffic counters of one listener (zeros before any traffic)."""
    listener = get_listener(db, ctx, listener_id)
    ctx.authorize(RESOURCE, "get_stats", listener.project_id)
    row = db.get(m.ListenerStatistics, listener.id)
    keys = ("active_connections", "bytes_in", "bytes_out", "request_errors",
            "total_connections")
    return deps.respond("stats", {k: int(getattr(row, k) or 0) if row else 0 for k in keys})


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
    the rules in the module doc), DuplicateListenerEntry (409), QuotaExceeded (403).
    """
    if default_pool is None and data.default_pool_id is not None:
        default_pool = _pool_of(db, lb, data.default_pool_id)
    if default_pool is not None:
        _check_default_pool(lb, data.protocol, default_pool)
    values = _with_defaults(data.protocol,
                            {k: getattr(data, k) for k in _STORED}, resetting=set(_STORED))
    _check_settings(lb, data.protocol, values, updating=False)
    _check_port_free(lb, data.protocol, data.protocol_port)
    deps.check_quota(db, state, lb.project_id or "", "listener")
    listener = m.Listener(
        id=m.new_id(), project_id=lb.project_id, load_balancer_id=lb.id,
        protocol=data.protocol, protocol_port=data.protocol_port,
        admin_state_up=data.admin_state_up is not False, operating_status=c.OFFLINE,
        default_pool=default_pool, **values)
    listener.tags = list(data.tags or [])
    lb.listeners.append(listener)
    return listener


def _flush(db: Session, listener: m.Listener) -> None:
    """Insert a new listener; a twin committed meanwhile on the same protocol and
    port (the table's unique key) is a 409, not a 500."""
    try:
        db.flush()
    except IntegrityError:
        raise exc.DuplicateListenerEntry(protocol=listener.protocol,
                                         port=listener.protocol_port) from None


def _pool_of(db: Session, lb: m.LoadBalancer, pool_id: str) -> m.Pool:
    """Pool ``pool_id`` of load balancer ``lb``, else NotFound (404) as Octavia."""
    pool = db.get(m.Pool, pool_id)
    if pool is None or pool.load_balancer_id != lb.id or pool.provisioning_status == c.DELETED:
        raise exc.NotFound(resource="Pool", id=pool_id)
    return pool


def _check_default_pool(lb: m.LoadBalancer, protocol: str, pool: m.Pool) -> None:
    """A default pool must be on ``lb`` and speak a protocol ``protocol`` can use.

    A pool may be the default pool of several listeners (Octavia allows it).
    """
    if protocol == c.PROMETHEUS:
        raise exc.ListenerNoChildren(protocol=c.PROMETHEUS)
    if pool.load_balancer is not lb and pool.load_balancer_id != lb.id:
        raise exc.NotFound(resource="Pool", id=pool.id)
    check_pool_protocol(protocol, pool.protocol)


def check_pool_protocol(listener_protocol: str, pool_protocol: str) -> None:
    """Raise ValidationError (400) unless a ``listener_protocol`` listener may send
    to a ``pool_protocol`` pool (VALID_LISTENER_POOL_PROTOCOL_MAP; Octavia's
    ``BaseController._validate_protocol``).
    """
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


def _with_defaults(protocol: str, values: dict[str, Any], resetting: set[str],
                   ) -> dict[str, Any]:
    """``values`` with the nulls among ``resetting`` replaced by their defaults.

    Timeouts, connection limit, client authentication and HSTS flags have
    fixed defaults; TLS ciphers, versions and ALPN protocols default only on
    listeners that terminate TLS (null elsewhere). Empty ``allowed_cidrs`` is
    null, duplicates are dropped; ``insert_headers`` and ``sni_container_refs``
    are never null.
    """
    out = dict(values)
    for key, default in _CREATE_DEFAULTS.items():
        if key in resetting and out.get(key) is None:
            out[key] = default
    if _terminates_tls(protocol, out):
        for key, tls_default in (("tls_ciphers", DEFAULT_TLS_CIPHERS),
                                 ("tls_versions", list(DEFAULT_TLS_VERSIONS)),
                                 ("alpn_protocols", list(DEFAULT_ALPN_PROTOCOLS))):
            if out.get(key) is None:
                out[key] = tls_default
    out["insert_headers"] = dict(out.get("insert_headers") or {})
    out["sni_container_refs"] = list(dict.fromkeys(out.get("sni_container_refs") or []))
    out["allowed_cidrs"] = list(dict.fromkeys(out.get("allowed_cidrs") or [])) or None
    return out


def _check_settings(lb: m.LoadBalancer, protocol: str, values: Mapping[str, Any],
                    updating: bool) -> None:
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
    ciphers = values.get("tls_ciphers")
    if ciphers is not None and not _CIPHER_STRING.match(ciphers):
        raise exc.ValidationError(detail="Invalid characters in cipher string. Only "
                                         "alphanumeric, -, +, !, :, @, =, _, and . are "
                                         "allowed.")
    _check_tls_lists(values)
    _check_allowed_cidrs(lb, values.get("allowed_cidrs") or [])
    _check_hsts(protocol, values, updating)


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


def _check_tls_lists(values: Mapping[str, Any]) -> None:
    versions = values.get("tls_versions")
    if versions is not None:
        if not versions:
            raise exc.ValidationError(detail="Empty TLS version list. Either specify at least "
                                             "one TLS version or remove this parameter to use "
                                             "the default.")
        bad = [v for v in versions if v not in TLS_VERSIONS]
        if bad:
            raise exc.ValidationError(detail="Invalid TLS versions: " + ", ".join(bad))
    alpn = values.get("alpn_protocols")
    if alpn is not None and not alpn:
        raise exc.ValidationError(detail="Empty ALPN protocol list. Either specify at least one "
                                         "ALPN protocol or remove this parameter to use the "
                                         "default.")


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
