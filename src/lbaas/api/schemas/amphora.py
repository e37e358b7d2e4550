"""Amphora shapes (api-ref "Amphorae", the admin API under /v2/octavia)."""

from __future__ import annotations

from typing import Any

from lbaas.api.schemas.common import ResponseModel, Timestamp, envelope, page_envelope


class AmphoraResponse(ResponseModel):
    """One HAProxy instance, in Octavia's amphora shape.

    ``compute_id`` is where it runs (the host, ``host:qlbaas-<lb_id>`` in
    namespace placement), not a Nova server id; ``ha_ip``/``ha_port_id`` are
    the VIP. What only a VM has (management network address, certificates,
    image, compute flavor) is null; VRRP fields are null for STANDALONE.
    """

    id: str
    loadbalancer_id: str
    compute_id: str | None
    lb_network_ip: str | None
    vrrp_ip: str | None
    ha_ip: str | None
    vrrp_port_id: str | None
    ha_port_id: str | None
    cert_expiration: Timestamp = None
    cert_busy: bool = False
    role: str
    status: str
    vrrp_interface: str | None
    vrrp_id: int | None
    vrrp_priority: int | None
    cached_zone: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    image_id: str | None = None
    compute_flavor: str | None = None

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of amphora row ``obj``."""
        return super().dump(obj, **{"loadbalancer_id": obj.load_balancer_id,
                                    "cert_expiration": None, "cert_busy": False,
                                    "cached_zone": None, "image_id": None,
                                    "compute_flavor": None, **given})


class AmphoraStats(ResponseModel):
    """One listener's counters as served by one amphora."""

    id: str
    loadbalancer_id: str
    listener_id: str
    active_connections: int
    bytes_in: int
    bytes_out: int
    request_errors: int
    total_connections: int


AmphoraRoot = envelope("amphora", AmphoraResponse)
AmphoraPage = page_envelope("amphorae", AmphoraResponse)
AmphoraStatsRoot = envelope("amphora_stats", list[AmphoraStats], "AmphoraStatsRoot")
