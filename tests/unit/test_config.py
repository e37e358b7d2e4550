"""Settings from the configuration file and ``lbaas serve``'s options."""

from __future__ import annotations

from pathlib import Path

from lbaas.config import load_settings


def test_the_default_provider_is_the_one_labelled_default(tmp_path: Path) -> None:
    """Providers list the default the service really uses, ``--provider`` included."""
    haproxy = load_settings([]).enabled_providers
    assert haproxy["haproxy"].endswith("(default)")
    assert not any(text.endswith("(default)") for name, text in haproxy.items()
                   if name != "haproxy")
    noop = load_settings([], default_provider="noop").enabled_providers
    assert noop["noop"].endswith("(default)")
    assert not noop["haproxy"].endswith("(default)")
    assert list(noop) == ["haproxy", "amphora", "noop"]
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\ndefault_provider_driver = noop\n")
    assert load_settings([str(conf)]).enabled_providers["noop"].endswith("(default)")


def test_configured_providers_are_listed_as_written(tmp_path: Path) -> None:
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\nenabled_provider_drivers = haproxy:Ours,noop:Test\n")
    settings = load_settings([str(conf)], default_provider="noop")
    assert settings.enabled_providers == {"haproxy": "Ours", "noop": "Test"}
