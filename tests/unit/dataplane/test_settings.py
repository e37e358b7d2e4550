"""[haproxy_amphora] options reach Settings, and the service wires the haproxy provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbaas.agent.local import make_placement
from lbaas.config import load_settings
from lbaas.dataplane.placement import LocalPlacement


def test_haproxy_amphora_options(tmp_path: Path) -> None:
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[haproxy_amphora]\nbase_path = /srv/lb\nhaproxy_cmd = /opt/haproxy\n"
                    "placement = namespace\nhard_stop_after = 5\nsupervise_interval = 0.5\n"
                    "default_connection_limit = 2000\n")
    settings = load_settings([str(conf)], state_dir=str(tmp_path / "state"))
    h = settings.haproxy
    assert (h.base_path, h.haproxy_cmd, h.placement, h.hard_stop_after) == \
        (Path("/srv/lb"), "/opt/haproxy", "namespace", 5)
    assert (h.supervise_interval, h.default_connection_limit) == (0.5, 2000)
    assert settings.haproxy_base_path == Path("/srv/lb")


def test_default_base_path_is_under_the_state_dir(tmp_path: Path) -> None:
    settings = load_settings([], state_dir=str(tmp_path / "state"))
    assert settings.haproxy.placement == "local"
    assert settings.haproxy_base_path == tmp_path / "state" / "lb"


def test_placements() -> None:
    assert isinstance(make_placement("local"), LocalPlacement)
    with pytest.raises(ValueError):
        make_placement("vm")
