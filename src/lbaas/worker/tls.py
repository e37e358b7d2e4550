"""The TLS material of a load balancer: its certificate references, resolved.

Before each apply the worker reads, through the certificate manager and as
the service (:data:`~lbaas.certificates.base.SERVICE`), every reference the
load balancer's listeners and pools name, and puts the PEM files HAProxy
loads into the spec (:attr:`LoadBalancerSpec.tls_files`): for a certificate,
its bundle (certificate, chain, key); for a CA, its certificates; for a CRL,
the CRL. The API checked the references when they were given; a reference
that fails now (deleted in Barbican, unreadable) fails the apply with the
reason, and the previous configuration keeps serving. Dates are not checked
here: a certificate that expires keeps being served until it is replaced.
"""

from __future__ import annotations

import dataclasses

from lbaas.certificates import parse
from lbaas.certificates.base import SERVICE, CertificateError, CertManager
from lbaas.dataplane import spec as s


def with_tls_files(lb: s.LoadBalancerSpec, manager: CertManager) -> s.LoadBalancerSpec:
    """``lb`` with its TLS files. Raises CertificateError (the reference and why)."""
    files: dict[str, s.TlsFileSpec] = {}

    def cert(ref: str) -> None:
        name = s.tls_file_name(s.TLS_CERT, ref)
        if name not in files:
            bundle = manager.get_cert(SERVICE, ref).bundle()
            files[name] = s.TlsFileSpec.of(s.TLS_CERT, ref, bundle.decode())

    def ca_and_crl(ca_ref: str | None, crl_ref: str | None) -> None:
        if not ca_ref:
            return
        try:
            ca = parse.ca_bundle(manager.get_secret(SERVICE, ca_ref))
        except ValueError as e:
            raise CertificateError(ca_ref, str(e)) from None
        files[s.tls_file_name(s.TLS_CA, ca_ref)] = s.TlsFileSpec.of(s.TLS_CA, ca_ref,
                                                                    ca.decode())
        if crl_ref:
            try:
                crl = parse.crl_for(manager.get_secret(SERVICE, crl_ref), ca)
            except ValueError as e:
                raise CertificateError(crl_ref, str(e)) from None
            files[s.tls_file_name(s.TLS_CRL, crl_ref)] = s.TlsFileSpec.of(
                s.TLS_CRL, crl_ref, crl.decode())

    for li in lb.listeners:
        for ref in (li.default_tls_container_ref, *li.sni_container_refs):
            if ref:
                cert(ref)
        ca_and_crl(li.client_ca_tls_container_ref, li.client_crl_container_ref)
    for pool in lb.pools:
        if not pool.tls_enabled:
            continue
        if pool.tls_container_ref:
            cert(pool.tls_container_ref)
        ca_and_crl(pool.ca_tls_container_ref, pool.crl_container_ref)
    return dataclasses.replace(lb, tls_files=tuple(files[k] for k in sorted(files)))
