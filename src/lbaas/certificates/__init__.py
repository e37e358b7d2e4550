"""Certificates: where TLS material for listeners and pools comes from.

A listener or pool names its certificates by reference, as in Octavia
(``default_tls_container_ref``, ``sni_container_refs``,
``client_ca_tls_container_ref``, ``client_crl_container_ref``,
``tls_container_ref``, ``ca_tls_container_ref``, ``crl_container_ref``).
A :class:`~lbaas.certificates.base.CertManager`, chosen by ``[certificates]
cert_manager``, turns a reference into checked PEM material:

- ``local_cert_manager`` (default): lbaas's own store
  (:mod:`lbaas.certificates.store`), which the API serves in Barbican's
  shape on lbaas's port (``/v1/secrets``, ``/v1/containers``); payloads are
  encrypted at rest.

The API asks the manager to check every reference it is given (400 before
anything is stored); the worker asks it for the material of a whole load
balancer before each apply (:mod:`lbaas.worker.tls`). Parsing and checking of
PKCS#12 bundles, certificates, keys, CA bundles and CRLs lives in
:mod:`lbaas.certificates.parse`.
"""
