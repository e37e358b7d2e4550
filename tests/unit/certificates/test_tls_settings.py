"""Octavia's [api_settings] TLS options: defaults, minimum version, prohibited ciphers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbaas.api import tls
from lbaas.common import exceptions as exc
from lbaas.config import TlsDefaults, load_settings


def test_operator_defaults_are_read_and_checked(tmp_path: Path) -> None:
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\ndefault_listener_tls_versions = TLSv1.3\n"
                    "minimum_tls_version = TLSv1.2\ntls_cipher_prohibit_list = RC4-MD5:DES\n"
                    "default_pool_alpn_protocols = http/1.1\n")
    t = load_settings([str(conf)]).tls
    assert t.listener_tls_versions == ("TLSv1.3",) and t.pool_alpn_protocols == ("http/1.1",)
    assert tls.listener_defaults(t)["tls_versions"] == ["TLSv1.3"]
    assert tls.pool_defaults(t)["alpn_protocols"] == ["http/1.1"]
    with pytest.raises(exc.ValidationError, match=r"less than the minimum: TLSv1\.1 < TLSv1\.2"):
        tls.check_tls_versions(["TLSv1.1", "TLSv1.3"], t)
    with pytest.raises(exc.ValidationError, match="prohibited by an administrator: RC4-MD5"):
        tls.check_ciphers("AES128-SHA:RC4-MD5", t)
    tls.check_ciphers("AES128-SHA", t)
    conf.write_text("[api_settings]\nminimum_tls_version = TLSv1.3\n")
    with pytest.raises(ValueError, match="Default listener TLS versions are less than"):
        load_settings([str(conf)])
    conf.write_text("[api_settings]\ntls_cipher_prohibit_list = ECDHE-RSA-AES128-GCM-SHA256\n")
    with pytest.raises(ValueError, match="Default listener ciphers conflict"):
        load_settings([str(conf)])
    assert TlsDefaults().allow_tls_terminated_listeners


def test_barbican_cert_manager_needs_keystone_and_a_service_user(tmp_path: Path) -> None:
    from lbaas.certificates.barbican import BarbicanCertManager

    conf = tmp_path / "lbaas.conf"
    conf.write_text("[certificates]\ncert_manager = barbican_cert_manager\n")
    with pytest.raises(ValueError, match="needs \\[api_settings\\] auth_strategy = keystone"):
        load_settings([str(conf)])
    conf.write_text("[certificates]\ncert_manager = barbican_cert_manager\n"
                    "[api_settings]\nauth_strategy = keystone\n")
    settings = load_settings([str(conf)])
    with pytest.raises(ValueError, match=r"needs lbaas's service user in \[service_auth\]"):
        BarbicanCertManager(settings.config_files)
    conf.write_text(conf.read_text() + "[service_auth]\nauth_type = password\n")
    with pytest.raises(ValueError, match=r"\[service_auth\] is incomplete"):
        BarbicanCertManager(settings.config_files)
    conf.write_text(conf.read_text() + "auth_url = http://127.0.0.1:1/v3\nusername = lbaas\n"
                    "password = x\nproject_name = service\nuser_domain_name = Default\n"
                    "project_domain_name = Default\n")
    BarbicanCertManager(settings.config_files)  # no request made yet
