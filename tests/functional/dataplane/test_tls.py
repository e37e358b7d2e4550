"""TLS through real HAProxy: termination, SNI, versions, ALPN, client certificates,
HSTS, X-SSL-* headers, re-encryption to members, files on disk, seamless swaps.

Specs carry their TLS files as the worker would make them
(:func:`tls_lb`); clients are Python's ``ssl`` (OpenSSL), ``openssl
s_client`` and ``curl`` on loopback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lbaas.dataplane import spec as s
from lbaas.dataplane.amphora import Amphorae
from lbaas.testing.backend import Backend
from lbaas.testing.pki import Authority, Issued
from tests.functional.dataplane.conftest import free_port
from tests.support.specs import member


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    """Server CA with certificates for three names, a client CA with clients."""
    server_ca = Authority.new("server CA")
    client_ca = Authority.new("client CA")
    other_ca = Authority.new("other CA")
    return {
        "server_ca": server_ca, "client_ca": client_ca, "other_ca": other_ca,
        "default": server_ca.issue("default.example.com"),
        "www": server_ca.issue("www.example.com"),
        "api": server_ca.issue("api.example.com", "api.example.com", "api2.example.com"),
        "alice": client_ca.issue("alice", client=True),
        "mallory": client_ca.issue("mallory", client=True),  # revoked
        "eve": other_ca.issue("eve", client=True),
    }


@pytest.fixture(scope="module")
def files(pki: dict[str, Issued]) -> Iterator[Path]:
    """The PKI as PEM files (for clients and backends)."""
    with tempfile.TemporaryDirectory(prefix="lbaas-tls-") as tmp:
        d = Path(tmp)
        for name, item in pki.items():
            (d / f"{name}.crt").write_bytes(item.cert_pem)
            (d / f"{name}.key").write_bytes(item.key_pem())
            (d / f"{name}.pem").write_bytes(item.pem_bundle())
        yield d


def cert_file(ref: str, item: Issued) -> s.TlsFileSpec:
    return s.TlsFileSpec.of(s.TLS_CERT, ref, item.pem_bundle().decode())


def tls_lb(port: int, members: tuple[s.MemberSpec, ...], pki: dict[str, Issued],
           listener: dict[str, object] | None = None, pool: dict[str, object] | None = None,
           extra_files: tuple[s.TlsFileSpec, ...] = ()) -> s.LoadBalancerSpec:
    """lb1: a TERMINATED_HTTPS listener (default certificate ``default``, SNI ``www``
    and ``api``) in front of an HTTP pool of ``members``."""
    li = s.ListenerSpec(id="listener1", protocol="TERMINATED_HTTPS", protocol_port=port,
                        default_pool_id="pool1", default_tls_container_ref="ref-default",
                        sni_container_refs=("ref-www", "ref-api"),
                        tls_versions=("TLSv1.2", "TLSv1.3"),
                        alpn_protocols=("h2", "http/1.1"), **(listener or {}))  # type: ignore
    p = s.PoolSpec(id="pool1", protocol="HTTP", lb_algorithm="ROUND_ROBIN", members=members,
                   **(pool or {}))  # type: ignore[arg-type]
    return s.LoadBalancerSpec(
        id="lb1", project_id="p", vip=s.VipSpec(address="127.0.0.1"), listeners=(li,),
        pools=(p,), tls_files=(cert_file("ref-default", pki["default"]),
                               cert_file("ref-www", pki["www"]),
                               cert_file("ref-api", pki["api"]), *extra_files))


def handshake(port: int, sni: str | None, ca: Path, *, version: ssl.TLSVersion | None = None,
              alpn: list[str] | None = None, client: Path | None = None,
              ) -> tuple[str, str | None, str]:
    """(server certificate CN, ALPN chosen, TLS version) of one handshake; raises
    ssl.SSLError / OSError if it fails."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if client is not None:
        ctx.load_cert_chain(client)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as tls:
        peer = tls.getpeercert()
        cn = dict(x[0] for x in peer["subject"])["commonName"]
        return cn, tls.selected_alpn_protocol(), str(tls.version())


def get(port: int, path: str, ca: Path, sni: str = "www.example.com",
        client: Path | None = None, headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, str], str]:
    """One HTTPS/1.1 request: (status, response headers, body)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    if client is not None:
        ctx.load_cert_chain(client)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=sni) as tls:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n{extra}\r\n"
                    .encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body.decode()


def test_default_and_sni_certificates(amphorae: Amphorae, backend: Callable[..., Backend],
                                      pki: dict[str, Issued], files: Path) -> None:
    web = backend("web1")
    port = free_port()
    amphorae.apply(tls_lb(port, (member("m1", web.port),), pki))
    ca = files / "server_ca.crt"
    assert handshake(port, None, ca)[0] == "default.example.com"  # no SNI
    assert handshake(port, "unknown.example.com", ca)[0] == "default.example.com"
    assert handshake(port, "www.example.com", ca)[0] == "www.example.com"
    assert handshake(port, "api.example.com", ca)[0] == "api.example.com"
    assert handshake(port, "api2.example.com", ca)[0] == "api.example.com"  # a SAN
    status, _, body = get(port, "/", ca)
    assert (status, body) == (200, "Welcome to web1\n")
    # openssl s_client agrees
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                          "-servername", "www.example.com", "-CAfile", str(ca)],
                         input=b"", capture_output=True, timeout=20).stdout.decode()
    assert "subject=CN = www.example.com" in out and "Verify return code: 0 (ok)" in out


def test_tls_versions_alpn_h2_and_hsts(amphorae: Amphorae, backend: Callable[..., Backend],
                                       pki: dict[str, Issued], files: Path) -> None:
    web = backend("web1")
    port = free_port()
    ca = files / "server_ca.crt"
    lb = tls_lb(port, (member("m1", web.port),), pki,
                listener={"hsts_max_age": 31536000, "hsts_include_subdomains": True})
    amphorae.apply(lb)
    assert handshake(port, "www.example.com", ca, version=ssl.TLSVersion.TLSv1_2)[2] == "TLSv1.2"
    assert handshake(port, "www.example.com", ca, version=ssl.TLSVersion.TLSv1_3)[2] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(port, "www.example.com", ca, version=ssl.TLSVersion.TLSv1_1)
    assert handshake(port, "www.example.com", ca, alpn=["h2", "http/1.1"])[1] == "h2"
    assert handshake(port, "www.example.com", ca, alpn=["http/1.1"])[1] == "http/1.1"
    # h2 used: curl speaks HTTP/2 to the VIP and gets the member's answer
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(ca), "--resolve",
         f"www.example.com:{port}:127.0.0.1", "-D", "-", f"https://www.example.com:{port}/"],
        capture_output=True, timeout=20, check=True).stdout.decode()
    assert out.startswith("HTTP/2 200") and out.endswith("Welcome to web1\n")
    assert "strict-transport-security: max-age=31536000; includeSubDomains;" in out
    # TLS 1.3 only: 1.2 is refused
    amphorae.apply(dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], tls_versions=("TLSv1.3",)),)))
    assert handshake(port, "www.example.com", ca)[2] == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(port, "www.example.com", ca, version=ssl.TLSVersion.TLSv1_2)


def _client_auth_lb(port: int, web: Backend, pki: dict[str, Issued], mode: str,
                    crl: bool = True) -> s.LoadBalancerSpec:
    ca, revoked = pki["client_ca"], pki["mallory"]
    assert isinstance(ca, Authority)
    extra = [s.TlsFileSpec.of(s.TLS_CA, "ref-client-ca", ca.cert_pem.decode())]
    if crl:
        extra.append(s.TlsFileSpec.of(s.TLS_CRL, "ref-crl", ca.crl(revoked=[revoked]).decode()))
    headers = tuple(sorted((h, "true") for h in (
        "X-SSL-Client-Verify", "X-SSL-Client-Has-Cert", "X-SSL-Client-DN", "X-SSL-Client-CN",
        "X-SSL-Issuer", "X-SSL-Client-SHA1", "X-SSL-Client-Not-Before",
        "X-SSL-Client-Not-After", "X-Forwarded-Proto")))
    return tls_lb(port, (member("m1", web.port),), pki, listener={
        "client_authentication": mode, "client_ca_tls_container_ref": "ref-client-ca",
        "client_crl_container_ref": "ref-crl" if crl else None, "insert_headers": headers},
        extra_files=tuple(extra))


def _refused(port: int, ca: Path, client: Path | None) -> bool:
    """True if the handshake or the first request fails (TLS 1.3 reports a refused
    client certificate on the first read)."""
    try:
        status, _, _ = get(port, "/", ca, client=client)
    except (ssl.SSLError, OSError):
        return True
    return status >= 500


def test_client_certificates_mandatory_with_crl(amphorae: Amphorae,
                                                backend: Callable[..., Backend],
                                                pki: dict[str, Issued], files: Path) -> None:
    web = backend("web1")
    port = free_port()
    amphorae.apply(_client_auth_lb(port, web, pki, "MANDATORY"))
    ca = files / "server_ca.crt"
    status, _, _ = get(port, "/", ca, client=files / "alice.pem")
    assert status == 200
    assert _refused(port, ca, None)  # no certificate
    assert _refused(port, ca, files / "eve.pem")  # another CA's
    assert _refused(port, ca, files / "mallory.pem")  # revoked by the CRL
    # the member sees who the client was
    _, _, body = get(port, "/__backend__/headers", ca, client=files / "alice.pem")
    seen = json.loads(body)
    assert seen["x-ssl-client-verify"] == "0" and seen["x-ssl-client-has-cert"] == "1"
    assert seen["x-ssl-client-dn"] == "/CN=alice" and seen["x-ssl-client-cn"] == "alice"
    assert seen["x-ssl-issuer"] == "/CN=client CA"
    assert seen["x-ssl-client-sha1"].lower() == pki["alice"].sha1_hex
    assert seen["x-ssl-client-not-after"] and seen["x-forwarded-proto"] == "https"
    # a client cannot forge them
    _, _, body = get(port, "/__backend__/headers", ca, client=files / "alice.pem",
                     headers={"X-SSL-Client-CN": "root"})
    assert json.loads(body)["x-ssl-client-cn"] == "alice"


def test_client_certificates_optional(amphorae: Amphorae, backend: Callable[..., Backend],
                                      pki: dict[str, Issued], files: Path) -> None:
    web = backend("web1")
    port = free_port()
    amphorae.apply(_client_auth_lb(port, web, pki, "OPTIONAL", crl=False))
    ca = files / "server_ca.crt"
    _, _, body = get(port, "/__backend__/headers", ca)
    assert json.loads(body)["x-ssl-client-has-cert"] == "0"
    _, _, body = get(port, "/__backend__/headers", ca, client=files / "alice.pem")
    seen = json.loads(body)
    assert (seen["x-ssl-client-has-cert"], seen["x-ssl-client-verify"]) == ("1", "0")
    assert _refused(port, ca, files / "eve.pem")  # presented but not trusted: refused


def test_reencryption_to_members_requiring_client_certificates(
        amphorae: Amphorae, backend: Callable[..., Backend], pki: dict[str, Issued],
        files: Path) -> None:
    # web1's certificate is signed by the server CA; web2's by another CA. Both want a
    # client certificate of the client CA, which the pool presents (alice).
    web1 = backend("web1", tls_port=0, tls_cert=(files / "www.crt", files / "www.key"),
                   tls_client_ca=files / "client_ca.crt")
    rogue = pki["other_ca"]
    assert isinstance(rogue, Authority)
    imposter = rogue.issue("www.example.com")
    (files / "imposter.crt").write_bytes(imposter.cert_pem)
    (files / "imposter.key").write_bytes(imposter.key_pem())
    web2 = backend("web2", tls_port=0, tls_cert=(files / "imposter.crt", files / "imposter.key"),
                   tls_client_ca=files / "client_ca.crt")
    port = free_port()
    server_ca = pki["server_ca"]
    hm = s.HealthMonitorSpec(id="hm1", type="HTTPS", delay=1, timeout=1, max_retries=1,
                             max_retries_down=1, url_path="/", expected_codes="200")
    lb = tls_lb(port, (member("m1", web1.tls_port), member("m2", web2.tls_port)), pki, pool={
        "tls_enabled": True, "tls_container_ref": "ref-alice",
        "ca_tls_container_ref": "ref-server-ca", "health_monitor": hm,
        "tls_versions": ("TLSv1.2", "TLSv1.3")},
        extra_files=(cert_file("ref-alice", pki["alice"]),
                     s.TlsFileSpec.of(s.TLS_CA, "ref-server-ca",
                                      server_ca.cert_pem.decode())))
    amphorae.apply(lb)
    ca = files / "server_ca.crt"

    def status(mid: str) -> str:
        return next(x.status for x in amphorae.health("lb1").servers if x.member_id == mid)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (status("m1") != "UP" or status("m2") != "DOWN"):
        time.sleep(0.1)
    assert (status("m1"), status("m2")) == ("UP", "DOWN")
    answers = {get(port, "/", ca)[2] for _ in range(6)}
    assert answers == {"Welcome to web1\n"}
    assert web2.requests == 0
    # without the client certificate, web1 refuses HAProxy's handshake: 502, or 503 when
    # HAProxy reads the refusal while it connects (web2 goes: with no health monitor it
    # would be picked too, its imposter certificate failing HAProxy's verification)
    amphorae.apply(dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], tls_container_ref=None, health_monitor=None,
        members=lb.pools[0].members[:1]),)))
    served = web1.requests
    assert {get(port, "/", ca)[0] for _ in range(4)} <= {502, 503}
    assert web1.requests == served


def test_tls_files_are_private_and_leave_with_the_load_balancer(
        amphorae: Amphorae, backend: Callable[..., Backend], pki: dict[str, Issued],
        files: Path) -> None:
    web = backend("web1")
    port = free_port()
    lb = tls_lb(port, (member("m1", web.port),), pki)
    amphorae.apply(lb)
    root = amphorae.files("lb1").root
    certs = root / "certs"
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700
    names = sorted(p.name for p in certs.iterdir())
    assert names == sorted([f.name for f in lb.tls_files] + ["listener1.crtlist"])
    for path in certs.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = pki["www"].key_pem()
    for path in root.rglob("*"):
        if path.is_file() and path.parent != certs and os.access(path, os.R_OK) \
                and not path.is_socket():
            assert key[30:90] not in path.read_bytes(), path
    spec = json.loads((root / "spec.json").read_text())
    assert all(f["content"] == "" for f in spec["tls_files"])
    crtlist = (certs / "listener1.crtlist").read_text().split()
    assert crtlist[0] == f"certs/{s.tls_file_name(s.TLS_CERT, 'ref-default')}"
    # a certificate no longer used is removed; the load balancer takes the rest along
    amphorae.apply(dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], sni_container_refs=("ref-www",)),)))
    assert s.tls_file_name(s.TLS_CERT, "ref-api") not in {p.name for p in certs.iterdir()}
    amphorae.delete("lb1")
    assert not root.exists()


def test_replacing_the_certificate_under_load_fails_no_handshake(
        amphorae: Amphorae, backend: Callable[..., Backend], pki: dict[str, Issued],
        files: Path) -> None:
    web = backend("web1")
    port = free_port()
    lb = tls_lb(port, (member("m1", web.port),), pki)
    amphorae.apply(lb)
    ca = files / "server_ca.crt"
    renewed = pki["server_ca"]
    assert isinstance(renewed, Authority)
    new_www = renewed.issue("www.example.com")
    stop = threading.Event()
    results: list[tuple[bool, str]] = []
    lock = threading.Lock()

    def hammer() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
                ctx.check_hostname = False
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                        ctx.wrap_socket(raw, server_hostname="www.example.com") as tls:
                    serial = format(x509_serial(tls.getpeercert(binary_form=True)), "x")
                ok = True
            except (ssl.SSLError, OSError) as e:
                ok, serial = False, repr(e)
            with lock:
                results.append((ok, serial))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    swapped = dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], sni_container_refs=("ref-www-2", "ref-api")),),
        tls_files=(*lb.tls_files, cert_file("ref-www-2", new_www)))
    assert amphorae.apply(swapped).action == "reloaded"
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(30)
    failures = [r for r in results if not r[0]]
    assert not failures, failures[:5]
    serials = [r[1] for r in results]
    old, new = (format(x.cert.serial_number, "x") for x in (pki["www"], new_www))
    assert serials[0] == old and serials[-1] == new and len(serials) > 50


def x509_serial(der: bytes | None) -> int:
    from cryptography import x509

    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_dead_haproxy_restarts_from_the_redacted_spec(
        amphorae: Amphorae, backend: Callable[..., Backend], pki: dict[str, Issued],
        files: Path) -> None:
    """Supervision restarts from spec.json, which has no key in it: the files on disk
    (checked against the spec's digests) serve again."""
    import signal

    web = backend("web1")
    port = free_port()
    amphorae.apply(tls_lb(port, (member("m1", web.port),), pki))
    master, _ = amphorae.pids("lb1")
    assert master is not None
    os.kill(master, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while amphorae.process("lb1").alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    saved = amphorae.last_spec("lb1")
    assert saved is not None and all(f.content == "" for f in saved.tls_files)
    assert amphorae.apply(saved).action == "started"
    assert handshake(port, "api.example.com", files / "server_ca.crt")[0] == "api.example.com"
    # a file that changed on disk is not served from a spec that cannot restore it
    amphorae.delete("lb1")
    amphorae.apply(tls_lb(port, (member("m1", web.port),), pki))
    victim = amphorae.files("lb1").root / "certs" / s.tls_file_name(s.TLS_CERT, "ref-api")
    victim.write_bytes(b"tampered")
    with pytest.raises(Exception, match="not on this host"):
        amphorae.apply(saved)
