"""Settings from the configuration file and ``lbaas serve``'s options, including those
Octavia's own config cannot express and octavia-tempest-plugin's noop set-up needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbaas.config import PROVIDER_DESCRIPTIONS, Settings, load_settings


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


def settings_from(tmp_path: Path, text: str) -> Settings:
    conf = tmp_path / "lbaas.conf"
    conf.write_text(text)
    return load_settings([str(conf)])


def test_provider_descriptions_with_commas_as_json(tmp_path: Path) -> None:
    s = settings_from(tmp_path, '[api_settings]\nenabled_provider_drivers = '
                                '{"noop": "The noop driver, for tests.", "haproxy": "H"}\n')
    assert s.enabled_providers == {"noop": "The noop driver, for tests.",
                                   "haproxy": "H"}


def test_provider_descriptions_in_octavias_form(tmp_path: Path) -> None:
    s = settings_from(tmp_path, "[api_settings]\n"
                                "enabled_provider_drivers = noop:The noop driver,haproxy:H\n")
    assert s.enabled_providers == {"noop": "The noop driver", "haproxy": "H"}
    # the defaults hold no comma, so a tempest.conf (an oslo DictOpt) can repeat them
    assert not any("," in d for d in PROVIDER_DESCRIPTIONS.values())


@pytest.mark.parametrize("value", ['{"noop": 3}', '["noop"]', "{bad"])
def test_bad_provider_json_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="enabled_provider_drivers"):
        settings_from(tmp_path, f"[api_settings]\nenabled_provider_drivers = {value}\n")


def test_network_driver(tmp_path: Path) -> None:
    assert load_settings([]).network_driver == "local"
    s = settings_from(tmp_path, "[controller_worker]\nnetwork_driver = noop\n")
    assert s.network_driver == "noop"
    with pytest.raises(ValueError, match="network_driver"):
        settings_from(tmp_path, "[controller_worker]\nnetwork_driver = neutron_v3\n")


def test_network_driver_neutron(tmp_path: Path) -> None:
    s = settings_from(tmp_path, "[controller_worker]\nnetwork_driver = neutron\n"
                                "[neutron]\nendpoint_override = http://127.0.0.1:9696/v2.0\n"
                                "region_name = RegionTwo\nendpoint_type = internal\n")
    assert s.network_driver == "neutron"
    assert (s.neutron.endpoint_override, s.neutron.region_name, s.neutron.endpoint_type) == \
        ("http://127.0.0.1:9696/v2.0", "RegionTwo", "internal")
    assert load_settings([]).neutron.endpoint_override is None
    # the service user is required: nothing else may read Neutron
    from lbaas.service import make_network_driver

    empty = tmp_path / "empty.conf"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"\[service_auth\]"):
        make_network_driver(s.replace(config_files=(str(empty),)))
