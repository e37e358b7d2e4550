"""keepalived for ACTIVE_STANDBY amphorae: keepalived.conf rendering and process control.

Each amphora of an ACTIVE_STANDBY load balancer runs, in its own network
namespace, an HAProxy and a keepalived (VRRP only) that share its directory
``<base_path>/<lb_id>/<amphora_id>/``. The two keepalived processes send VRRP
adverts to each other by unicast (each amphora's own address, ``vrrp_ip``, on
the VIP's subnet); the MASTER holds the VIP and sends gratuitous ARPs when it
takes it. Both HAProxies serve the same configuration and bind the VIP
whether it is there or not (``net.ipv4.ip_nonlocal_bind`` in the namespace),
so the BACKUP serves the moment the VIP arrives. Octavia's amphora driver does
the same (``amphorae/drivers/keepalived/jinja``); its settings have the names
and meaning of Octavia's ``[keepalived_vrrp]`` options (:class:`KeepalivedSettings`).

How fast the VIP moves. A BACKUP takes over when it has heard no advert for
3 advert intervals plus a skew of ``(256 - priority) / 256`` of one (RFC
5798): with ``advert_int`` 0.5 s and the BACKUP's priority 90, 1.82 s after
the last advert from a master that died, and after the skew alone (0.32 s)
when the master leaves in order (keepalived stopped, or its check failing:
it sends priority 0). Sub-second advert intervals exist only in VRRP
version 3, and keepalived refuses authentication with version 3 (RFC 5798
dropped it); so the version follows ``advert_int``: a whole number of seconds
renders VRRPv2 with ``auth_type PASS`` (Octavia's configuration, 3.6 s to take
over a dead master at 1 s), less renders VRRPv3 without it. Either way
``check_unicast_src`` accepts adverts only from the peer's address.

What keepalived reports. State changes go, in order, through keepalived's
notify FIFO to :data:`NOTIFY_SCRIPT`, which keeps the amphora's state
(``MASTER``, ``BACKUP``, ``FAULT``, ``STOP``) in ``vrrp.state``; the state is
believed only while keepalived runs (:meth:`KeepalivedProcess.state`).

The check script (:data:`CHECK_SCRIPT`) fails when the amphora's HAProxy is
not serving: its master is not alive in the amphora's directory (an HAProxy
2.6 master exits when its worker dies) or its stats socket is gone. It is a
``/bin/sh`` script using built-ins only: it runs every
``vrrp_check_interval`` seconds in every amphora (a Python check costs 100 ms
of CPU per run on a loaded host).

Injection safety: every value in keepalived.conf is an id matching
:data:`~lbaas.dataplane.render.ID_RE`, an IP address parsed and re-printed,
a range-checked number, an interface name made here, or a path from
:data:`_PATH_RE`'s characters in double quotes; no tenant string (name,
description) reaches it. :class:`~lbaas.dataplane.errors.RenderError`
otherwise.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from lbaas.common import constants as c
from lbaas.dataplane import haproxy, render
from lbaas.dataplane.errors import ConfigCheckError, ProcessError, RenderError
from lbaas.dataplane.render import ID_RE
from lbaas.dataplane.spec import AmphoraSpec, LoadBalancerSpec

LOG = logging.getLogger(__name__)

TEMPLATE_NAME = "keepalived.conf.j2"
VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")

CHECK_SCRIPT = """#!/bin/sh
# lbaas: keepalived's check that this amphora's HAProxy serves (exit 0) or not.
# keepalived runs it as: <amphora directory>
# Built-ins only. An HAProxy 2.6 master exits when its worker dies, so a live
# master whose working directory is this amphora's means a serving worker.
cd "$1" 2>/dev/null || exit 1
[ -S stats.sock ] || exit 1
read -r pid < haproxy.pid 2>/dev/null || exit 1
here=$(pwd -P)
cd -P "/proc/$pid/cwd" 2>/dev/null || exit 1
[ "$(pwd -P)" = "$here" ]
"""

NOTIFY_SCRIPT = """#!/bin/sh
# lbaas: keeps this amphora's VRRP state (MASTER, BACKUP, FAULT, STOP) in a file.
# keepalived runs it as: <state file> <notify FIFO>, and writes one line per
# change to the FIFO, in order: INSTANCE "<name>" <state> <priority>
while read -r kind name state priority; do
  case "$kind $state" in
    "INSTANCE MASTER"|"INSTANCE BACKUP"|"INSTANCE FAULT"|"INSTANCE STOP")
      printf '%s\\n' "$state" > "$1.new" && mv -f "$1.new" "$1" ;;
  esac
done < "$2"
"""

# Absolute paths written into keepalived.conf: a closed set of characters, so
# that nothing in them is special to keepalived's parser (comments start at
# '#' or '!', '$' substitutes, '@' selects by config id, '~' runs sequences,
# '"' quotes, '{' '}' open and close blocks, white space splits words).
_PATH_RE = re.compile(r"^/[A-Za-z0-9_./+=:-]*$")
_AUTH_PASS_RE = re.compile(r"^[A-Za-z0-9]{1,8}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


@dataclass(frozen=True)
class KeepalivedSettings:
    """keepalived on this host (``[keepalived_vrrp]``, Octavia's names). Seconds.

    ``check_interval``, ``fail_count`` and ``success_count``: the check script
    runs every ``check_interval`` seconds; ``fail_count`` failures in a row
    put the amphora in FAULT (it gives up the VIP), ``success_count``
    successes bring it back. ``garp_refresh_interval`` and
    ``garp_refresh_count``: while MASTER, that many gratuitous ARPs every so
    many seconds (keepalived also sends 5 at once on taking over).
    """

    keepalived_cmd: str = "/usr/sbin/keepalived"
    check_interval: int = 1
    fail_count: int = 2
    success_count: int = 2
    garp_refresh_interval: int = 5
    garp_refresh_count: int = 2
    start_timeout: float = 10.0
    stop_timeout: float = 10.0


@dataclass(frozen=True)
class KeepalivedFiles:
    """keepalived's files in an amphora's directory ``root`` (also its working directory)."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "keepalived.conf"

    @property
    def pid(self) -> Path:
        """The parent process (``-p``)."""
        return self.root / "keepalived.pid"

    @property
    def vrrp_pid(self) -> Path:
        """The VRRP child (``-r``)."""
        return self.root / "vrrp.pid"

    @property
    def state(self) -> Path:
        """The VRRP state, kept by :data:`NOTIFY_SCRIPT`."""
        return self.root / "vrrp.state"

    @property
    def fifo(self) -> Path:
        return self.root / "vrrp.fifo"

    @property
    def log(self) -> Path:
        return self.root / "keepalived.log"


@dataclass(frozen=True)
class KeepalivedView:
    """Everything keepalived.conf says for one amphora (checked values, finished words)."""

    lb_id: str
    amphora_id: str
    instance: str
    version: int
    interface: str
    vrrp_id: int
    priority: int
    advert_int: str
    auth_pass: str | None
    vrrp_ip: str
    peers: tuple[str, ...]
    vips: tuple[str, ...]
    check_command: str
    check_interval: int
    fail_count: int
    success_count: int
    garp_refresh_interval: int
    garp_refresh_count: int
    notify_fifo: str
    notify_command: str


def _quoted(value: str) -> str:
    """``value`` as one double-quoted keepalived word (checked by :func:`command`)."""
    if '"' in value or "\n" in value:
        raise RenderError(f"cannot quote {value!r} for keepalived.conf")
    return f'"{value}"'


def _path(value: Path | str, what: str) -> str:
    text = str(value)
    if not _PATH_RE.fullmatch(text) or ".." in text.split("/"):
        raise RenderError(f"{what} {text!r} is not an absolute path of letters, digits and "
                          "'_./+=:-' (keepalived.conf takes no other character there)")
    return text


def command(*paths: Path | str) -> str:
    """A script with its arguments, all absolute paths, as keepalived reads one command."""
    return " ".join(_path(p, "path") for p in paths)


def _int(value: int, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RenderError(f"{what} must be an integer from {low} to {high}, not {value!r}")
    return value


def _id(value: str, what: str) -> str:
    if not ID_RE.fullmatch(value or ""):
        raise RenderError(f"{what} id {value!r} is not a valid identifier")
    return value


def _address(value: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        if "%" not in value:
            return ipaddress.ip_address(value)
    except ValueError:
        pass
    raise RenderError(f"{what} {value!r} is not an IP address")


def vrrp_version(advert_int: float) -> int:
    """2 for a whole number of seconds (with authentication), else 3 (sub-second adverts)."""
    return 2 if float(advert_int).is_integer() else 3


def _advert_int(value: float, version: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RenderError(f"advert_int {value!r} is not a number of seconds")
    low, high = (1, 255) if version == 2 else (0.01, 40.95)
    if not low <= value <= high:
        raise RenderError(f"advert_int must be from {low} to {high} seconds, not {value!r}")
    return f"{round(value, 2):g}"


def build_view(lb: LoadBalancerSpec, amphora: AmphoraSpec, interface: str,
               settings: KeepalivedSettings, files: KeepalivedFiles,
               check_script: Path, notify_script: Path) -> KeepalivedView:
    """Decide keepalived.conf for ``amphora`` of ``lb``; raises :class:`RenderError`.

    ``interface`` is the amphora's interface on the VIP's subnet;
    ``check_script`` and ``notify_script`` the installed :data:`CHECK_SCRIPT`
    and :data:`NOTIFY_SCRIPT`.
    """
    lb_id = _id(lb.id, "load balancer")
    amphora_id = _id(amphora.id, "amphora")
    if lb.topology != c.TOPOLOGY_ACTIVE_STANDBY or lb.vrrp is None:
        raise RenderError(f"load balancer {lb_id} is not ACTIVE_STANDBY with a VRRP group")
    if lb.amphora(amphora.id) is None:
        raise RenderError(f"amphora {amphora_id} is not one of load balancer {lb_id}'s")
    vrrp = lb.vrrp
    version = vrrp_version(vrrp.advert_int)
    own = _address(amphora.vrrp_ip, "vrrp_ip")
    peers = []
    for other in lb.amphorae:
        if other.id == amphora.id:
            continue
        peer = _address(other.vrrp_ip, "peer vrrp_ip")
        if peer.version != own.version or peer == own:
            raise RenderError(f"amphora {other.id}'s vrrp_ip {peer} cannot be a VRRP peer "
                              f"of {own}")
        peers.append(str(peer))
    if not peers:
        raise RenderError(f"amphora {amphora_id} has no VRRP peer")
    vips = []
    for vip in (lb.vip, *lb.additional_vips):
        address = _address(vip.address, "VIP")
        if address.version != own.version:
            raise RenderError(f"VIP {address} is not of the family of vrrp_ip {own}")
        vips.append(f"{address}/{address.max_prefixlen}")
    auth_pass = None
    if version == 2:
        if vrrp.auth_type != "PASS" or not _AUTH_PASS_RE.fullmatch(vrrp.auth_pass or ""):
            raise RenderError("VRRPv2 needs auth_type PASS and an auth_pass of 1 to 8 "
                              "letters or digits")
        auth_pass = vrrp.auth_pass
    if not _IFNAME_RE.fullmatch(interface):
        raise RenderError(f"interface {interface!r} is not an interface name")
    return KeepalivedView(
        lb_id=lb_id, amphora_id=amphora_id, instance=lb_id, version=version,
        interface=interface, vrrp_id=_int(vrrp.vrrp_id, "vrrp_id", 1, 255),
        priority=_int(amphora.vrrp_priority, "vrrp_priority", 1, 254),
        advert_int=_advert_int(vrrp.advert_int, version), auth_pass=auth_pass,
        vrrp_ip=str(own), peers=tuple(peers), vips=tuple(vips),
        check_command=command(check_script, files.root),
        check_interval=_int(settings.check_interval, "vrrp_check_interval", 1, 3600),
        fail_count=_int(settings.fail_count, "vrrp_fail_count", 1, 100),
        success_count=_int(settings.success_count, "vrrp_success_count", 1, 100),
        garp_refresh_interval=_int(settings.garp_refresh_interval,
                                   "vrrp_garp_refresh_interval", 0, 86400),
        garp_refresh_count=_int(settings.garp_refresh_count, "vrrp_garp_refresh_count", 1, 100),
        notify_fifo=_path(files.fifo, "notify FIFO"),
        notify_command=command(notify_script, files.state))


_ENV = render.environment(q=_quoted)


def render_view(view: KeepalivedView) -> str:
    """The keepalived.conf text of ``view``."""
    try:
        return _ENV.get_template(TEMPLATE_NAME).render(k=view)
    except jinja2.TemplateError as e:
        raise RenderError(f"rendering keepalived.conf failed: {e}") from e


def check_config(keepalived_cmd: str, conf: Path, preexec: Callable[[], None] | None,
                 timeout: float = 30.0) -> None:
    """``keepalived -t -f conf`` (inside the amphora's namespace, where its interface is).

    Raises :class:`ConfigCheckError` with keepalived's messages.
    """
    try:
        proc = subprocess.run([keepalived_cmd, "--config-test", "-f", str(conf)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False, preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigCheckError(f"could not run '{keepalived_cmd} --config-test': {e}") from e
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        raise ConfigCheckError("keepalived refused the configuration: " + output[-2000:])


class KeepalivedProcess:
    """The keepalived of one amphora directory (not thread-safe; callers serialise).

    Started in the foreground of its own session (``--dont-fork``; no
    systemd here), VRRP only, logging to ``keepalived.log``; like HAProxy it
    is detached from lbaas and outlives it. Identity: the PID in
    ``keepalived.pid`` whose working directory is the amphora's.
    """

    def __init__(self, files: KeepalivedFiles, settings: KeepalivedSettings) -> None:
        self.files = files
        self.settings = settings

    def command_line(self) -> list[str]:
        """keepalived's arguments (absolute paths, so ``ps`` tells the amphora)."""
        root = self.files.root.resolve()
        return [self.settings.keepalived_cmd, "--dont-fork", "--log-console", "--no-syslog",
                "--vrrp", "-f", str(root / self.files.conf.name),
                "-p", str(root / self.files.pid.name), "-r", str(root / self.files.vrrp_pid.name)]

    def pid(self) -> int | None:
        """The parent's PID if it is alive and ours, else None."""
        try:
            pid = int(self.files.pid.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if haproxy.process_alive(pid, self.files.root) else None

    def state(self) -> str | None:
        """MASTER, BACKUP, FAULT or STOP as keepalived last reported; None if it is not running."""
        if self.pid() is None:
            return None
        try:
            state = self.files.state.read_text().strip()
        except OSError:
            return None
        return state if state in VRRP_STATES else None

    def start(self, preexec: Callable[[], None] | None) -> int:
        """Start keepalived on the installed keepalived.conf; returns its PID once it has
        reported a state. Raises :class:`ProcessError` with its messages otherwise."""
        for stale in (self.files.pid, self.files.vrrp_pid, self.files.state):
            stale.unlink(missing_ok=True)
        log = self.files.log
        if log.exists() and log.stat().st_size > haproxy.LOG_ROTATE_BYTES:
            log.unlink()
        out = log.open("ab")
        try:
            proc = subprocess.Popen(self.command_line(), cwd=self.files.root,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True, close_fds=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as e:
            raise ProcessError(f"could not start keepalived: {e}") from e
        finally:
            out.close()
        haproxy.track_child(proc)
        deadline = time.monotonic() + self.settings.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProcessError(f"keepalived exited with status {proc.returncode}: "
                                   + self._log_tail())
            if self.state() is not None:
                return proc.pid
            time.sleep(0.01)
        self._kill(proc.pid)
        raise ProcessError(f"keepalived reported no VRRP state within "
                           f"{self.settings.start_timeout:g} s: " + self._log_tail())

    def reload(self) -> None:
        """Make keepalived read keepalived.conf again (SIGHUP); instances keep their state."""
        pid = self.pid()
        if pid is None:
            raise ProcessError("keepalived is not running; cannot reload")
        os.kill(pid, signal.SIGHUP)

    def stop(self) -> None:
        """Stop keepalived (SIGTERM: a MASTER sends priority 0 and releases the VIP, so the
        peer takes over after its skew time), then SIGKILL; idempotent."""
        pid = self.pid()
        if pid is not None:
            self._kill(pid)
        self.files.state.unlink(missing_ok=True)

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout
        while haproxy.process_alive(pid, self.files.root) and time.monotonic() < deadline:
            time.sleep(0.01)
        if haproxy.process_alive(pid, self.files.root):
            LOG.warning("keepalived %d in %s ignored SIGTERM; killing it", pid, self.files.root)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            try:  # its VRRP child follows its parent (it watches it)
                child = int(self.files.vrrp_pid.read_text().strip())
            except (OSError, ValueError):
                child = 0
            if child and haproxy.process_alive(child, self.files.root):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)

    def _log_tail(self) -> str:
        try:
            lines = self.files.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " / ".join(lines[-5:]) or "no message"


def await_master(states: Callable[[], dict[str, str | None]], advert_int: float,
                 poll: float = 0.02) -> None:
    """Wait until ``states()`` (amphora id -> keepalived's VRRP state) names a MASTER:
    within 3 advert intervals plus the skew for a new pair. Raises :class:`ProcessError`
    if none is within 4 advert intervals (seconds) and 2 s more."""
    timeout = 4 * advert_int + 2.0
    deadline = time.monotonic() + timeout
    while True:
        seen = states()
        if "MASTER" in seen.values():
            return
        if time.monotonic() > deadline:
            raise ProcessError(f"no amphora took the VIP within {timeout:g} s (VRRP "
                               f"states: {seen})")
        time.sleep(poll)
