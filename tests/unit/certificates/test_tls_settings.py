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
