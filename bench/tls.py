"""TLS termination benchmark: lbaas's TERMINATED_HTTPS listener against a minimal haproxy.cfg.

Figures (one line each: name, value, unit[, ratio to the baseline]):

- ``handshakes_minimal`` / ``handshakes_lbaas``: new TLS handshakes per
  second (wrk over HTTPS with ``Connection: close``: one TCP connection and
  one full handshake per request);
- ``keepalive_rps_minimal`` / ``keepalive_rps_lbaas``: requests per second
  over kept-alive TLS connections.

The lbaas side is a load balancer applied by the agent (as the worker
would): a TERMINATED_HTTPS listener whose default certificate comes from the
spec's TLS files, in front of an HTTP pool of two members, with lbaas's
defaults (TLS 1.2 and 1.3, Octavia's cipher string, ALPN h2/http/1.1/1.0).
The baseline is a hand-written ``bind ... ssl crt <the same PEM file>`` in
front of the same two members. Members are HAProxy processes answering
``http-request return`` (fast, so the TLS frontend is what is measured). The
two are measured in the same run with the same load generator, interleaved
(``--rounds`` each, medians); the goal is a ratio of at least 0.95. The
certificate is ECDSA P-256 (``--rsa`` for RSA 2048). All traffic is on
127.0.0.1; every process started here is stopped by PID at the end.

Usage: .venv/bin/python bench/tls.py [--seconds 5] [--rounds 3] [--rsa]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataplane import (  # type: ignore[import-not-found]
    BACKEND_CFG,
    HAPROXY,
    ensure_wrk,
    first_200,
    free_port,
    line,
    plain_haproxy,
    run_wrk,
)

from lbaas.common import constants as c
from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae, AmphoraSettings
from lbaas.testing.pki import Authority, Issued

MINIMAL_TLS_CFG = """global
    maxconn 6000
defaults
    mode http
    timeout connect 5s
    timeout client 50s
    timeout server 50s
frontend fe
    bind 127.0.0.1:{port} ssl crt {pem}
    default_backend be
backend be
    balance roundrobin
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
"""


def certificate(rsa: bool) -> Issued:
    """A server certificate for 127.0.0.1 (ECDSA P-256, or RSA 2048 with ``rsa``)."""
    ca = Authority.new("bench CA")
    leaf = ca.issue("bench.example", "bench.example", san_ips=("127.0.0.1",))
    if rsa:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

        key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(leaf.cert.subject)
                .issuer_name(ca.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .sign(ca.key, hashes.SHA256()))
        return Issued(cert=cert, key=key)  # type: ignore[arg-type]
    return leaf


def tls_spec(port: int, p1: int, p2: int, bundle: bytes) -> s.LoadBalancerSpec:
    members = (s.MemberSpec(id="m1", address="127.0.0.1", protocol_port=p1),
               s.MemberSpec(id="m2", address="127.0.0.1", protocol_port=p2))
    li = s.ListenerSpec(id="tls", protocol="TERMINATED_HTTPS", protocol_port=port,
                        default_pool_id="pool", default_tls_container_ref="bench-cert",
                        tls_ciphers=c.DEFAULT_TLS_CIPHERS, tls_versions=("TLSv1.2", "TLSv1.3"),
                        alpn_protocols=("h2", "http/1.1", "http/1.0"))
    pool = s.PoolSpec(id="pool", protocol="HTTP", lb_algorithm="ROUND_ROBIN", members=members)
    return s.LoadBalancerSpec(
        id="bench-tls", project_id="bench", vip=s.VipSpec(address="127.0.0.1"),
        listeners=(li,), pools=(pool,),
        tls_files=(s.TlsFileSpec.of(s.TLS_CERT, "bench-cert", bundle.decode()),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per side")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rsa", action="store_true", help="RSA 2048 instead of ECDSA P-256")
    args = parser.parse_args()
    wrk = ensure_wrk()
    leaf = certificate(args.rsa)
    bundle = leaf.pem_bundle()
    with tempfile.TemporaryDirectory(prefix="lbaas-bench-tls-", dir="/tmp") as tmp:
        root = Path(tmp)
        pem = root / "minimal" / "cert.pem"
        pem.parent.mkdir(parents=True)
        pem.write_bytes(bundle)
        pem.chmod(0o600)
        p1, p2 = free_port(), free_port()
        am = Amphorae(AmphoraSettings(base_path=root / "lb", haproxy_cmd=HAPROXY))
        lbaas_port, minimal_port = free_port(), free_port()
        with plain_haproxy(root / "m1", BACKEND_CFG.format(port=p1, name="m1")), \
                plain_haproxy(root / "m2", BACKEND_CFG.format(port=p2, name="m2")), \
                plain_haproxy(root / "minimal", MINIMAL_TLS_CFG.format(
                    port=minimal_port, pem=pem, p1=p1, p2=p2)):
            first_200(p1)
            first_200(p2)
            am.apply(tls_spec(lbaas_port, p1, p2, bundle))
            try:
                urls = {"lbaas": f"https://127.0.0.1:{lbaas_port}/",
                        "minimal": f"https://127.0.0.1:{minimal_port}/"}
                for url in urls.values():  # warm-up, and both answer over TLS
                    out = run_wrk(wrk, 0, 1, url=url)
                    assert out["requests"] > 0 and out["failed"] == 0, (url, out)
                results: dict[str, dict[str, list[float]]] = {
                    k: {"handshakes": [], "keepalive": []} for k in urls}
                for i in range(args.rounds):
                    # each round starts with the other side, so drift hits both alike
                    for side, url in sorted(urls.items(), reverse=bool(i % 2)):
                        close = run_wrk(wrk, 0, args.seconds, args.connections, close=True,
                                        url=url)
                        keep = run_wrk(wrk, 0, args.seconds, args.connections, url=url)
                        if close["failed"] or keep["failed"]:
                            print(f"warning: {side}: failed requests {close['failed']} "
                                  f"(new connections), {keep['failed']} (keep-alive)")
                        results[side]["handshakes"].append(close["rps"])
                        results[side]["keepalive"].append(keep["rps"])
            finally:
                am.delete("bench-tls")
    med = {side: {k: statistics.median(v) for k, v in r.items()} for side, r in results.items()}
    line("handshakes_minimal", med["minimal"]["handshakes"], "handshakes/s")
    line("handshakes_lbaas", med["lbaas"]["handshakes"], "handshakes/s",
         med["lbaas"]["handshakes"] / med["minimal"]["handshakes"])
    line("keepalive_rps_minimal", med["minimal"]["keepalive"], "req/s")
    line("keepalive_rps_lbaas", med["lbaas"]["keepalive"], "req/s",
         med["lbaas"]["keepalive"] / med["minimal"]["keepalive"])


if __name__ == "__main__":
    main()
