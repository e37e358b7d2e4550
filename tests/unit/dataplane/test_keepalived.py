"""keepalived.conf: golden texts, the VRRP version rule, injection safety, and the two
scripts keepalived runs (state FIFO reader, HAProxy check) run for real."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas.dataplane import keepalived
from lbaas.dataplane import spec as s
from lbaas.dataplane.errors import RenderError
from lbaas.dataplane.keepalived import KeepalivedFiles, KeepalivedSettings

GOLDEN = Path(__file__).with_name("golden")
BASE = Path("/var/lib/lbaas/lb")
LB_ID = "8d5f1c2e-4b7a-4c1e-9a55-3f1f0e2b7c11"
MASTER = s.AmphoraSpec(id="0b2f6a4e-9c1d-4e8f-b3a2-5d6c7e8f9a01", role="MASTER",
                       vrrp_ip="198.18.9.11", vrrp_priority=100)
BACKUP = s.AmphoraSpec(id="1c3a7b5f-0d2e-4f9a-c4b3-6e7d8f9a0b12", role="BACKUP",
                       vrrp_ip="198.18.9.12", vrrp_priority=90)


def pair(advert_int: float = 0.5, **changes: Any) -> s.LoadBalancerSpec:
    lb = s.LoadBalancerSpec(
        id=LB_ID, project_id="p", topology="ACTIVE_STANDBY",
        vip=s.VipSpec(address="198.18.9.10", subnet_id="sn", subnet_cidr="198.18.9.0/24",
                      gateway_ip="198.18.9.1"),
        amphorae=(MASTER, BACKUP),
        vrrp=s.VrrpSpec(vrrp_id=1, auth_type="PASS", auth_pass="5f3a9c1d", advert_int=advert_int))
    return dataclasses.replace(lb, **changes)


def render(lb: s.LoadBalancerSpec, amphora: s.AmphoraSpec = MASTER,
           interface: str = "lbn-0b2f6a4e9c1", settings: KeepalivedSettings | None = None,
           base: Path = BASE) -> str:
    files = KeepalivedFiles(base / lb.id / amphora.id)
    return keepalived.render_view(keepalived.build_view(
        lb, amphora, interface, settings or KeepalivedSettings(), files,
        base / "vrrp-check", base / "vrrp-notify"))


@pytest.mark.parametrize(("name", "advert_int"), [("keepalived_v3", 0.5),
                                                  ("keepalived_v2", 1.0)])
def test_golden(name: str, advert_int: float) -> None:
    assert render(pair(advert_int)) == (GOLDEN / f"{name}.conf").read_text()


def test_the_backup_peers_with_the_master() -> None:
    text = render(pair(), BACKUP, interface="lbn-1c3a7b5f0d2")
    assert "    priority 90\n" in text
    assert "    unicast_src_ip 198.18.9.12\n    unicast_peer {\n        198.18.9.11\n" in text
    assert "        198.18.9.10/32 dev lbn-1c3a7b5f0d2\n" in text


@pytest.mark.parametrize(("advert_int", "version", "auth"), [
    (0.4, 3, False), (0.5, 3, False), (1.0, 2, True), (1, 2, True), (3, 2, True),
    (1.5, 3, False)])
def test_whole_seconds_are_vrrpv2_with_authentication_less_is_vrrpv3(
        advert_int: float, version: int, auth: bool) -> None:
    text = render(pair(advert_int))
    assert f"    vrrp_version {version}\n" in text
    assert ("auth_pass 5f3a9c1d" in text) is auth
    assert "    check_unicast_src\n" in text


def _amphora(**changes: Any) -> s.AmphoraSpec:
    return dataclasses.replace(MASTER, **changes)


# Every value a tenant or a foreign spec could bend towards keepalived's parser:
# line breaks, block braces, comments ('#', '!'), quotes, '$' substitution,
# '@' config ids, '~' sequences, white space, out-of-range numbers.
INJECTIONS: list[tuple[dict[str, Any], str]] = [
    ({"id": "lb\n}\nvrrp_instance evil {"}, "not a valid identifier"),
    ({"id": "lb x"}, "not a valid identifier"),
    ({"vip": s.VipSpec(address="198.18.9.10 dev eth0\n}")}, "not an IP address"),
    ({"vip": s.VipSpec(address="198.18.9.10/24")}, "not an IP address"),
    ({"vip": s.VipSpec(address="fe80::1%eth0")}, "not an IP address"),
    ({"vip": s.VipSpec(address="2001:db8::10")}, "not of the family"),
    ({"amphorae": (_amphora(vrrp_ip="198.18.9.11\n}"), BACKUP)}, "not an IP address"),
    ({"amphorae": (_amphora(vrrp_ip="198.18.9.12"), BACKUP)}, "cannot be a VRRP peer"),
    ({"amphorae": (_amphora(vrrp_priority=255), BACKUP)}, "vrrp_priority"),
    ({"amphorae": (_amphora(vrrp_priority=0), BACKUP)}, "vrrp_priority"),
    ({"amphorae": (_amphora(vrrp_priority=True), BACKUP)}, "vrrp_priority"),
    ({"amphorae": (MASTER,)}, "no VRRP peer"),
    ({"topology": "SINGLE"}, "not ACTIVE_STANDBY"),
    ({"vrrp": None}, "not ACTIVE_STANDBY"),
    ({"vrrp": s.VrrpSpec(vrrp_id=256, advert_int=0.5)}, "vrrp_id"),
    ({"vrrp": s.VrrpSpec(vrrp_id=0, advert_int=0.5)}, "vrrp_id"),
    ({"vrrp": s.VrrpSpec(advert_int=float("nan"))}, "not a number of seconds"),
    ({"vrrp": s.VrrpSpec(advert_int=0.001)}, "advert_int must be"),
    ({"vrrp": s.VrrpSpec(advert_int=256.0, auth_pass="a")}, "advert_int must be"),
    ({"vrrp": s.VrrpSpec(advert_int=1, auth_pass="abc def")}, "auth_pass"),
    ({"vrrp": s.VrrpSpec(advert_int=1, auth_pass='ab"c')}, "auth_pass"),
    ({"vrrp": s.VrrpSpec(advert_int=1, auth_pass="a#b")}, "auth_pass"),
    ({"vrrp": s.VrrpSpec(advert_int=1, auth_pass="123456789")}, "auth_pass"),
    ({"vrrp": s.VrrpSpec(advert_int=1, auth_pass="")}, "auth_pass"),
    ({"vrrp": s.VrrpSpec(advert_int=1, auth_type="AH", auth_pass="abc")}, "auth_type PASS"),
]


@pytest.mark.parametrize(("changes", "message"), INJECTIONS)
def test_values_keepalived_could_misread_are_refused(changes: dict[str, Any],
                                                     message: str) -> None:
    lb = pair(**changes)
    amphora = lb.amphorae[0] if lb.amphorae and "id" not in changes else MASTER
    if "id" in changes:
        with pytest.raises(RenderError, match=message):
            render(lb)
        return
    with pytest.raises(RenderError, match=message):
        render(lb, amphora)


def test_an_amphora_of_another_load_balancer_is_refused() -> None:
    with pytest.raises(RenderError, match="not one of"):
        render(pair(), _amphora(id="someone-else"))


@pytest.mark.parametrize("base", ["/var/lib/lb aas", '/var/lib/"lbaas', "/var/lib/#lbaas",
                                  "/var/lib/!lbaas", "/var/lib/$LBAAS", "/var/lib/@lbaas",
                                  "/var/lib/~lbaas", "/var/lib/{lbaas}", "/var/lib/../etc",
                                  "var/lib/lbaas", "/var/lib/lbaas\n}"])
def test_paths_keepalived_could_misread_are_refused(base: str) -> None:
    with pytest.raises(RenderError, match="not an absolute path"):
        render(pair(), base=Path(base))


@pytest.mark.parametrize("interface", ["lbn x", "lbn-0123456789ab", "eth0\n", ""])
def test_interface_names_are_checked(interface: str) -> None:
    with pytest.raises(RenderError, match="not an interface name"):
        render(pair(), interface=interface)


def test_no_value_spans_lines_and_every_line_is_one_of_ours() -> None:
    text = render(pair())
    assert all("\r" not in line for line in text.splitlines())
    assert text.count("{") == text.count("}")


# -- the scripts, run as keepalived runs them --------------------------------------------


@pytest.fixture
def scripts(tmp_path: Path) -> Iterator[Path]:
    for name, text in (("vrrp-notify", keepalived.NOTIFY_SCRIPT),
                       ("vrrp-check", keepalived.CHECK_SCRIPT)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    yield tmp_path


def test_the_notify_script_keeps_the_last_state_in_order(scripts: Path) -> None:
    fifo, state = scripts / "vrrp.fifo", scripts / "vrrp.state"
    os.mkfifo(fifo)
    proc = subprocess.Popen([str(scripts / "vrrp-notify"), str(state), str(fifo)])
    with fifo.open("w") as w:
        for line in ['INSTANCE "lb" BACKUP 90', 'INSTANCE "lb" MASTER 90',
                     'INSTANCE "lb" EVIL$(touch x) 90', 'GROUP "g" FAULT', "garbage",
                     'INSTANCE "lb" FAULT 90', 'INSTANCE "lb" BACKUP 90']:
            w.write(line + "\n")
            w.flush()
    assert proc.wait(timeout=10) == 0  # the FIFO's writer closed: it ends
    assert state.read_text() == "BACKUP\n"
    assert not (scripts / "x").exists()


def test_the_check_script_passes_only_while_the_amphoras_haproxy_lives(
        scripts: Path, tmp_path: Path) -> None:
    amphora = tmp_path / "amphora"
    amphora.mkdir()
    check = [str(scripts / "vrrp-check"), str(amphora)]
    assert subprocess.run(check, check=False).returncode == 1  # nothing there
    sleeper = subprocess.Popen(["sleep", "60"], cwd=amphora)
    other = subprocess.Popen(["sleep", "60"], cwd=tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(amphora / "stats.sock"))
        (amphora / "haproxy.pid").write_text(f"{sleeper.pid}\n")
        assert subprocess.run(check, check=False).returncode == 0
        (amphora / "haproxy.pid").write_text(f"{other.pid}\n")  # a process elsewhere
        assert subprocess.run(check, check=False).returncode == 1
        (amphora / "haproxy.pid").write_text(f"{sleeper.pid}\n")
        sleeper.kill()
        sleeper.wait()
        time.sleep(0.05)
        assert subprocess.run(check, check=False).returncode == 1  # dead
    finally:
        sock.close()
        for p in (sleeper, other):
            p.kill()
            p.wait()
    assert shutil.which("sh")
